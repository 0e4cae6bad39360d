#include "conclab/error.hpp"

namespace conclab {

void throw_errno(const std::string& call, int err) {
  throw std::system_error(err, std::generic_category(), call);
}

}  // namespace conclab
