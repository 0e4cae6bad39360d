// A std::vector crosses element by element, so its elements must be
// encodable: raw pointers are not.
// expect: conclab::wire: this type cannot be sent to another process
#include <vector>

#include "conclab/wire.hpp"

void use(const std::vector<int*>& ptrs) { (void)conclab::wire::to_bytes(ptrs); }
