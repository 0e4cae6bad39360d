// A std::string_view key is a pointer and a length: the characters stay in
// the process that set it. Refused (use FixedString<N>).
// expect: SharedDict<K, V>: the key type K cannot be shared between processes
#include <string_view>

#include "conclab/shm.hpp"

void use() { conclab::SharedDict<std::string_view, int> ages; }
