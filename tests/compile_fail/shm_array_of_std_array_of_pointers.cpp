// An array is portable only when its elements are: two pointers are not.
// expect: SharedArray<T>: T cannot be shared between processes
#include <array>

#include "conclab/shm.hpp"

void use() { conclab::SharedArray<std::array<int*, 2>> pairs(4); }
