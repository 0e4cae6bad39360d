// signals.cpp — the stop pipe behind conclab::stop_on_signals().
#include "conclab/signals.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <mutex>
#include <string>
#include <utility>

#include <fmt/format.h>

#include "conclab/error.hpp"

namespace conclab {

namespace {

std::atomic<int> g_signal{0};
std::atomic<int> g_read_fd{-1};
std::atomic<int> g_write_fd{-1};
std::mutex g_install_mutex;

void on_stop_signal(int signo) {
  const int saved = errno;
  int expected = 0;
  g_signal.compare_exchange_strong(expected, signo);
  const int fd = g_write_fd.load(std::memory_order_relaxed);
  const char byte = 1;
  // One byte makes the pipe readable for every waiter; a full pipe already is.
  if (fd >= 0) [[maybe_unused]] auto n = ::write(fd, &byte, 1);
  errno = saved;
}

std::string signal_name(int signo) {
  const char* abbrev = ::sigabbrev_np(signo);
  return abbrev ? fmt::format("SIG{}", abbrev) : fmt::format("signal {}", signo);
}

}  // namespace

Interrupted::Interrupted(int signo) : std::runtime_error("interrupted by " + signal_name(signo)), signo_(signo) {}

void stop_on_signals(std::initializer_list<int> signals) {
  std::lock_guard lock(g_install_mutex);
  if (g_read_fd.load() < 0) {
    int fds[2];
    check(::pipe2(fds, O_CLOEXEC | O_NONBLOCK), "pipe2");
    g_write_fd.store(fds[1]);
    g_read_fd.store(fds[0]);
  }
  struct sigaction action {};
  action.sa_handler = on_stop_signal;
  sigemptyset(&action.sa_mask);
  action.sa_flags = 0;  // no SA_RESTART: a blocking call returns EINTR and looks at the flag
  for (int signo : signals) check(::sigaction(signo, &action, nullptr), "sigaction");
}

bool stop_requested() noexcept { return g_signal.load() != 0; }
int stop_signal() noexcept { return g_signal.load(); }
int stop_fd() noexcept { return g_read_fd.load(); }

void throw_if_stopped() {
  if (const int signo = g_signal.load()) throw Interrupted(signo);
}

void clear_stop() noexcept {
  const int fd = g_read_fd.load();
  char buffer[64];
  if (fd >= 0)
    while (::read(fd, buffer, sizeof buffer) > 0) {
    }
  g_signal.store(0);
}

namespace detail {
// Both ends of the stop pipe (-1 when not installed): a forked child keeps
// them (process.cpp), or the handler it inherits would write into whatever
// descriptor took the closed one's number.
std::pair<int, int> stop_pipe() noexcept { return {g_read_fd.load(), g_write_fd.load()}; }
}  // namespace detail

}  // namespace conclab
