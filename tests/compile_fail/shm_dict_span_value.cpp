// A std::span value points at elements in one process's memory. Refused.
// expect: SharedDict<K, V>: the value type V cannot be shared between processes
#include <span>

#include "conclab/shm.hpp"

void use() { conclab::SharedDict<int, std::span<const int>> rows; }
