// A SharedArray of C strings: each element would be an address in the
// writer's memory. Refused.
// expect: SharedArray<T>: T cannot be shared between processes
#include "conclab/shm.hpp"

void use() { conclab::SharedArray<const char*> names(4); }
