// A Pool task that returns a std::string_view: it would point into the
// worker's memory. Refused (return a std::string).
// expect: conclab::wire: this type cannot be sent to another process
#include <string_view>

#include "conclab/pool.hpp"

std::string_view name(int) { return "worker"; }

void use(conclab::Pool& pool) { (void)pool.apply(name, 1); }
