// fd.hpp — unique_fd, the one owner of a file descriptor.
//
// Closes the descriptor when it goes out of scope, moves but never copies, so
// a descriptor is never leaked on an exception path nor closed twice.
#pragma once

#include <fcntl.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <utility>

#include "conclab/error.hpp"

namespace conclab {

class unique_fd {
 public:
  unique_fd() noexcept = default;
  explicit unique_fd(int fd) noexcept : fd_(fd) {}
  unique_fd(unique_fd&& other) noexcept : fd_(other.release()) {}
  unique_fd& operator=(unique_fd&& other) noexcept {
    reset(other.release());
    return *this;
  }
  unique_fd(const unique_fd&) = delete;
  unique_fd& operator=(const unique_fd&) = delete;
  ~unique_fd() { reset(); }

  [[nodiscard]] int get() const noexcept { return fd_; }
  explicit operator bool() const noexcept { return fd_ >= 0; }

  // Gives up ownership without closing.
  [[nodiscard]] int release() noexcept { return std::exchange(fd_, -1); }

  // Closes the current descriptor (if any) and owns `fd` instead. close()
  // errors are ignored: POSIX leaves the descriptor closed either way.
  void reset(int fd = -1) noexcept {
    if (fd_ >= 0 && fd_ != fd) ::close(fd_);
    fd_ = fd;
  }

 private:
  int fd_ = -1;
};

// Closes the descriptors first..last: close_range(2), or one by one where
// the kernel (or a seccomp profile) refuses it. Async-signal-safe, for a
// child between fork and exec.
inline void close_descriptors(unsigned first, unsigned last = ~0U) noexcept {
  if (::close_range(first, last, 0) == 0) return;
  const long most = ::sysconf(_SC_OPEN_MAX);
  const unsigned long end = std::min<unsigned long>(last, most > 0 ? static_cast<unsigned long>(most) - 1 : 65535);
  for (unsigned long fd = first; fd <= end; ++fd) ::close(static_cast<int>(fd));
}

// Raises the soft RLIMIT_NOFILE (descriptors this process may hold) to the
// hard limit, as far as an unprivileged process may; returns the limit now.
// The fan-out client and servers call it first: 10,000 clients need more
// than the usual soft limit of 1,024.
inline int raise_fd_limit() {
  rlimit limit{};
  check(::getrlimit(RLIMIT_NOFILE, &limit), "getrlimit(RLIMIT_NOFILE)");
  if (limit.rlim_cur < limit.rlim_max) {
    limit.rlim_cur = limit.rlim_max;
    check(::setrlimit(RLIMIT_NOFILE, &limit), "setrlimit(RLIMIT_NOFILE)");
  }
  constexpr rlim_t most = 1 << 30;  // RLIM_INFINITY, or a number an int holds
  return static_cast<int>(std::min(limit.rlim_cur, most));
}

// The most reserve_fd_table() reserves unless told otherwise: C10K and
// room (512 KiB of kernel memory at most, whatever the limit).
constexpr int kMostReservedDescriptors = 1 << 16;

// Grows this process's descriptor table now to hold descriptors 0..n-1
// (n is capped at the soft RLIMIT_NOFILE). The kernel grows the table as
// descriptors are opened, doubling it; in a process of more than one thread
// each growth first waits for an RCU grace period (expand_files() calls
// synchronize_rcu()), some milliseconds in which that socket() or accept()
// blocks. A server with threads meeting a burst of 10,000 connects stops
// accepting for those waits, and the kernel's accept queue overflows: the
// dropped connects are retried a second later. Grown once at the start, the
// table costs nothing later (it never shrinks). It holds no descriptor
// afterwards. Returns the size reserved, or 0 if the kernel refused (out of
// descriptors already, say): only speed is lost then, so it never throws.
inline int reserve_fd_table(int n = kMostReservedDescriptors) noexcept {
  rlimit limit{};
  if (n <= 0 || ::getrlimit(RLIMIT_NOFILE, &limit) < 0) return 0;
  n = static_cast<int>(std::min<rlim_t>(static_cast<rlim_t>(n), limit.rlim_cur));
  const unique_fd probe(::eventfd(0, EFD_CLOEXEC));
  if (!probe) return 0;
  if (probe.get() >= n - 1) return n;  // that big already
  const unique_fd last(::fcntl(probe.get(), F_DUPFD_CLOEXEC, n - 1));
  return last ? n : 0;
}

}  // namespace conclab
