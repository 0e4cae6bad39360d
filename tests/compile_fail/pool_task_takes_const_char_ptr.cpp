// A Pool task that takes a const char*: the worker would get an address in
// the parent's memory. Refused (take a std::string).
// expect: conclab::wire: this type cannot be sent to another process
#include <cstring>

#include "conclab/pool.hpp"

int length(const char* text) { return static_cast<int>(std::strlen(text)); }

void use(conclab::Pool& pool) { (void)pool.apply(length, "hello"); }
