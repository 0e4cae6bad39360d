// error.hpp — failed system calls become exceptions that name the call.
//
//   check(::pipe(fds), "pipe");          // throws std::system_error("pipe: ...")
//   throw_errno("fork");                 // uses the current errno
//
// std::system_error::what() then reads "<call>: <strerror>", which is what
// run_main() prints after "error: ".
#pragma once

#include <cerrno>
#include <exception>
#include <stdexcept>
#include <string>
#include <system_error>

namespace conclab {

// Throws std::system_error for `call` with the given errno value.
[[noreturn]] void throw_errno(const std::string& call, int err = errno);

// Returns `result` unless it is -1 (the POSIX failure value), in which case it
// throws std::system_error naming `call`. Works for int, ssize_t, pid_t, ...
template <class T>
T check(T result, const char* call) {
  if (result == static_cast<T>(-1)) throw_errno(call);
  return result;
}

// The message of an exception: e.what(), or "unknown exception" for one not
// derived from std::exception. With `with_type`, "<demangled type>: <what>"
// (how a Pool reports a task's exception from another process).
std::string describe(std::exception_ptr error, bool with_type = false);

// A wait with a timeout ran out: AsyncResult::get(timeout) (Python's
// multiprocessing.TimeoutError) and a socket call with settimeout() (Python's
// socket.timeout, an alias of the builtin TimeoutError since 3.10). Not a
// std::system_error, so a handler for it placed first tells it apart from a
// failed call.
class TimeoutError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Misuse of a conclab object that Python reports as RuntimeError or
// ValueError (start a thread twice, join before start, ...). A programming
// error, hence a std::logic_error.
class UsageError : public std::logic_error {
 public:
  using std::logic_error::logic_error;
};

}  // namespace conclab
