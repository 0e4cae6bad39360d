// signals.cpp — the stop pipe behind conclab::stop_on_signals().
#include "conclab/signals.hpp"

#include <fcntl.h>
#include <sys/syscall.h>
#include <unistd.h>

#if defined(__SANITIZE_THREAD__)
#include <dlfcn.h>
#endif

#include <cstring>
#include <mutex>
#include <string>
#include <utility>

#include <fmt/format.h>

#include "conclab/error.hpp"

namespace conclab {

namespace {

// Plain ints read and written with the __atomic builtins: under TSan the
// handler below must not call into the sanitizer's runtime (see there).
int g_signal = 0;
int g_read_fd = -1;
int g_write_fd = -1;
std::mutex g_install_mutex;

int load(const int& v) noexcept { return __atomic_load_n(&v, __ATOMIC_SEQ_CST); }
void store(int& v, int value) noexcept { __atomic_store_n(&v, value, __ATOMIC_SEQ_CST); }

#if defined(__SANITIZE_THREAD__)
// ThreadSanitizer (gcc 12's libtsan) catches every signal itself and runs
// the program's handler later, at a point it thinks safe; about one stop
// signal in 200 sent to a server blocked in poll() is then never handed on,
// and the server runs forever (CI, lab06.hello.signals.cpp). So under TSan
// the handler is installed with libc's own sigaction, past the sanitizer's,
// and the kernel runs it directly. It may then interrupt the sanitizer's
// runtime, so it is not instrumented and makes no call into it: __atomic
// builtins without instrumentation, and write() as a raw system call.
__attribute__((no_sanitize_thread))
#endif
void on_stop_signal(int signo) {
  const int saved = errno;
  int expected = 0;
  __atomic_compare_exchange_n(&g_signal, &expected, signo, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
  const int fd = __atomic_load_n(&g_write_fd, __ATOMIC_SEQ_CST);
  const char byte = 1;
  // One byte makes the pipe readable for every waiter; a full pipe already is.
  if (fd >= 0) [[maybe_unused]] auto n = ::syscall(SYS_write, fd, &byte, 1);
  errno = saved;
}

using SigactionFn = int (*)(int, const struct sigaction*, struct sigaction*);

// The sigaction that installs on_stop_signal: libc's under TSan (above).
SigactionFn install_sigaction() {
#if defined(__SANITIZE_THREAD__)
  static const SigactionFn libc = [] {
    void* handle = ::dlopen("libc.so.6", RTLD_NOW | RTLD_NOLOAD);
    void* symbol = handle ? ::dlsym(handle, "sigaction") : nullptr;
    if (!symbol) throw std::runtime_error(fmt::format("stop_on_signals: libc's sigaction not found: {}", ::dlerror()));
    return reinterpret_cast<SigactionFn>(symbol);
  }();
  return libc;
#else
  return ::sigaction;
#endif
}

std::string signal_name(int signo) {
  const char* abbrev = ::sigabbrev_np(signo);
  return abbrev ? fmt::format("SIG{}", abbrev) : fmt::format("signal {}", signo);
}

}  // namespace

Interrupted::Interrupted(int signo) : std::runtime_error("interrupted by " + signal_name(signo)), signo_(signo) {}

void stop_on_signals(std::initializer_list<int> signals) {
  std::lock_guard lock(g_install_mutex);
  if (load(g_read_fd) < 0) {
    int fds[2];
    check(::pipe2(fds, O_CLOEXEC | O_NONBLOCK), "pipe2");
    store(g_write_fd, fds[1]);
    store(g_read_fd, fds[0]);
  }
  const SigactionFn set_action = install_sigaction();
  struct sigaction action {};
  action.sa_handler = on_stop_signal;
  sigemptyset(&action.sa_mask);
  action.sa_flags = 0;  // no SA_RESTART: a blocking call returns EINTR and looks at the flag
  for (int signo : signals) check(set_action(signo, &action, nullptr), "sigaction");
}

bool stop_requested() noexcept { return load(g_signal) != 0; }
int stop_signal() noexcept { return load(g_signal); }
int stop_fd() noexcept { return load(g_read_fd); }

void throw_if_stopped() {
  if (const int signo = load(g_signal)) throw Interrupted(signo);
}

void clear_stop() noexcept {
  const int fd = load(g_read_fd);
  char buffer[64];
  if (fd >= 0)
    while (::read(fd, buffer, sizeof buffer) > 0) {
    }
  store(g_signal, 0);
}

namespace detail {
// Both ends of the stop pipe (-1 when not installed): a forked child keeps
// them (process.cpp), or the handler it inherits would write into whatever
// descriptor took the closed one's number.
std::pair<int, int> stop_pipe() noexcept { return {load(g_read_fd), load(g_write_fd)}; }

// In a forked child: the same descriptor numbers, but a pipe of its own.
// Sharing the parent's would wake the parent's waits on the child's signal
// (and the child's on the parent's), each finding its own flag unset and
// waiting again on a pipe that stays readable: a spin. Async-signal-safe.
void renew_stop_pipe_in_child() noexcept {
  const int read_end = load(g_read_fd);
  const int write_end = load(g_write_fd);
  if (read_end < 0) return;
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC | O_NONBLOCK) < 0) return;
  ::dup3(fds[0], read_end, O_CLOEXEC);
  ::dup3(fds[1], write_end, O_CLOEXEC);
  ::close(fds[0]);
  ::close(fds[1]);
  const char byte = 1;
  if (load(g_signal) != 0) [[maybe_unused]] auto n = ::write(write_end, &byte, 1);  // a stop already under way
}
}  // namespace detail

}  // namespace conclab
