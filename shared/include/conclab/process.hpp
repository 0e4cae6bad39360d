// process.hpp — conclab's multiprocessing.Process, built on fork().
//
//   conclab::Process p(foo, 3);     // like Process(target=foo, args=(3,))
//   p.start();                      // fork: the child runs foo(3) and leaves with _exit
//   p.join();                       // wait for it and reap it: no zombie
//   p.exitcode();                   // 0, the target's return value, 1 on an
//                                   // exception, or -N when killed by signal N
//
// As in Python, the child is a copy of the parent: it sees the parent's
// memory as it was at start(), and nothing it changes comes back. Differences
// from Python, on purpose:
//   - join(timeout) returns whether the process ended;
//   - stdout and stderr are flushed before fork, so buffered output is not
//     printed twice (once by the parent, once by the child);
//   - the child closes every descriptor but 0, 1, 2 and those named with
//     set_pass_fds() (Python's subprocess pass_fds) as its first step, so a
//     listening socket or a pool's channel never leaks into it;
//   - the destructor of a started, unjoined Process joins it (a daemon one is
//     killed first), so a Process never leaves a zombie behind.
// A Process object is used by one thread at a time.
//
// What a target may do. The child is made with fork() and runs the target
// directly (Python's "fork" start method). Only the thread that called
// start() exists in the child. In a single-threaded program the child may do
// anything. In a program with other threads, a lock one of them held at the
// moment of fork() (a mutex of the program, a lock inside a library) stays
// locked in the child forever, and the child hangs if it takes it. (glibc's
// fork() resets its own malloc and stdio locks in the child, every FILE's
// included, even one another thread held with flockfile(), but what they
// guarded may be half-updated; other C libraries do not even do that.)
// There, a target should use only
// async-signal-safe calls (write, read, _exit, ...; see signal-safety(7)) and
// what it knows no other thread locks, or exec another program. conclab's
// own code in the child does no more than that: it closes descriptors, runs
// the target, flushes stdout and stderr only if their locks are free, and
// leaves with _exit. conclab's Pool does not fork from its threads at all: its
// workers come from a single-threaded fork server (pool.hpp).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <tuple>
#include <type_traits>
#include <vector>

#include "conclab/clock.hpp"  // detail::saturating_ns
#include "conclab/error.hpp"
#include "conclab/fd.hpp"

namespace conclab {

class Process {
 public:
  // Process(target, args...): target may return void (exit code 0) or an int
  // (the exit code, like sys.exit(n)).
  template <class F, class... Args>
    requires std::invocable<std::decay_t<F>, std::decay_t<Args>...>
  explicit Process(F&& target, Args&&... args)
      : Process(std::function<int()>(
            [call = std::make_shared<std::tuple<std::decay_t<F>, std::decay_t<Args>...>>(
                 std::forward<F>(target), std::forward<Args>(args)...)]() -> int {
              return std::apply(
                  [](auto& f, auto&... a) -> int {
                    if constexpr (std::is_void_v<std::invoke_result_t<decltype(f), decltype(a)...>>) {
                      std::invoke(f, a...);
                      return 0;
                    } else {
                      return static_cast<int>(std::invoke(f, a...));
                    }
                  },
                  *call);
            })) {}

  explicit Process(std::function<int()> target);
  Process(Process&&) noexcept;
  Process& operator=(Process&&) noexcept;
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;
  ~Process();

  // Forks the child. Throws UsageError when called twice, std::system_error
  // when fork() fails.
  void start();

  // Waits for the child to end and reaps it. Throws UsageError before start().
  void join();
  // Waits at most `timeout`; returns true when the child has ended (and is
  // reaped). Zero or negative polls; hours::max() waits as long as it takes.
  template <class Rep, class Period>
  bool join(std::chrono::duration<Rep, Period> timeout) {
    return join_for(detail::saturating_ns(timeout));
  }

  // True between start() and the child's end.
  [[nodiscard]] bool is_alive();
  // std::nullopt until the child has ended; then its exit status, or -N when
  // signal N killed it (Python's convention).
  [[nodiscard]] std::optional<int> exitcode() const { return exitcode_; }
  // The child's pid once started.
  [[nodiscard]] std::optional<pid_t> pid() const;

  // Sends SIGTERM / SIGKILL to a running child (nothing once it has ended).
  void terminate();
  void kill();

  [[nodiscard]] const std::string& name() const { return name_; }
  Process& set_name(std::string name);
  [[nodiscard]] bool daemon() const { return daemon_; }
  // Throws UsageError once started. A daemon child is killed when its
  // Process object is destroyed (Python kills daemon children at exit).
  Process& set_daemon(bool daemon);
  // Descriptors the child keeps open besides 0, 1 and 2 (a pipe's end, a
  // connection to serve). Throws UsageError once started, or for a negative fd.
  Process& set_pass_fds(std::vector<int> fds);

  // "signal 9 (Killed)" or "exit status 3": how the child ended, for messages.
  [[nodiscard]] static std::string describe_status(int exitcode);

 private:
  bool join_for(std::chrono::nanoseconds timeout);
  bool reap(bool block);
  bool record(int wait_status);
  void send(int signal);
  void finish() noexcept;

  std::function<int()> target_;
  std::string name_;
  bool daemon_ = false;
  std::vector<int> pass_fds_;  // sorted
  pid_t pid_ = -1;
  unique_fd pidfd_;  // opened by join(timeout): readable when the child ends
  std::optional<int> exitcode_;
};

// Turns a wait status into Python's exitcode: the exit status, or -signal.
int exitcode_from_status(int status);

}  // namespace conclab
