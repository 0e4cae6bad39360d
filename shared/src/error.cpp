#include "conclab/error.hpp"

#include <cxxabi.h>

#include <cstdlib>
#include <typeinfo>

namespace conclab {

void throw_errno(const std::string& call, int err) {
  throw std::system_error(err, std::generic_category(), call);
}

std::string describe(std::exception_ptr error, bool with_type) {
  try {
    std::rethrow_exception(error);
  } catch (const std::exception& e) {
    if (!with_type) return e.what();
    int status = 0;
    char* name = abi::__cxa_demangle(typeid(e).name(), nullptr, nullptr, &status);
    std::string out = std::string(status == 0 && name ? name : typeid(e).name()) + ": " + e.what();
    std::free(name);
    return out;
  } catch (...) {
    return "unknown exception";
  }
}

}  // namespace conclab
