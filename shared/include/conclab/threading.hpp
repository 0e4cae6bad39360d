// threading.hpp — conclab's `threading` module.
//
// Thread mirrors Python's threading.Thread: a target with its arguments, a
// name, a daemon flag, start() exactly once, join(). Where Python is awkward
// conclab is explicit:
//   - join(timeout) returns whether the thread ended (Python returns None and
//     makes you call is_alive() afterwards);
//   - misuse that Python reports as RuntimeError (start twice, join before
//     start, join from the thread itself, set daemon after start) throws
//     conclab::UsageError with an equally clear message;
//   - an exception escaping the target is printed to stderr like Python's
//     threading.excepthook does and kept: exception() returns it.
// A Thread that is destroyed while still running is joined first (Python's
// interpreter waits for non-daemon threads at exit the same way); a daemon
// thread is detached instead, and keeps its own state alive. A moved-from
// Thread can only be destroyed or assigned to: every other call throws
// UsageError. Timeouts never overflow: zero or negative means "poll", and one
// too large for a deadline (hours::max()) means "wait as long as it takes".
#pragma once

#include <chrono>
#include <condition_variable>
#include <exception>
#include <functional>
#include <concepts>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <system_error>
#include <thread>
#include <tuple>
#include <utility>

#include "conclab/clock.hpp"  // detail::saturating_ns
#include "conclab/error.hpp"

namespace conclab {


class Thread {
 public:
  // Thread(target, args...) — like threading.Thread(target=f, args=(...)).
  // The arguments are copied (or moved) into the thread, as std::thread does.
  template <class F, class... Args>
    requires std::invocable<std::decay_t<F>, std::decay_t<Args>...>
  explicit Thread(F&& target, Args&&... args)
      : Thread(std::function<void()>(
            // Held through a shared_ptr so that move-only arguments (a
            // std::promise, a unique_ptr) fit in a std::function.
            [call = std::make_shared<std::tuple<std::decay_t<F>, std::decay_t<Args>...>>(
                 std::forward<F>(target), std::forward<Args>(args)...)] {
              std::apply([](auto&& f, auto&&... a) { std::invoke(std::move(f), std::move(a)...); }, std::move(*call));
            })) {}

  explicit Thread(std::function<void()> target);

  Thread(Thread&&) noexcept;
  Thread& operator=(Thread&&) noexcept;
  Thread(const Thread&) = delete;
  Thread& operator=(const Thread&) = delete;
  ~Thread();

  // Starts the thread. Throws UsageError when called a second time, and
  // ThreadStartError (below) when the system cannot create another thread.
  void start();

  // Waits until the thread ends. Throws UsageError before start() or when
  // called from the thread itself (it would wait forever).
  void join();

  // Waits at most `timeout`; returns true when the thread has ended.
  template <class Rep, class Period>
  bool join(std::chrono::duration<Rep, Period> timeout) {
    return join_for(detail::saturating_ns(timeout));
  }

  [[nodiscard]] bool is_alive() const;
  [[nodiscard]] bool started() const;

  [[nodiscard]] std::string name() const;
  Thread& set_name(std::string name);

  [[nodiscard]] bool daemon() const;
  // Throws UsageError once the thread has started.
  Thread& set_daemon(bool daemon);

  // The std::thread id once started (Python's `ident`).
  [[nodiscard]] std::optional<std::thread::id> ident() const;

  // The exception that escaped the target, if any (after the thread ended).
  [[nodiscard]] std::exception_ptr exception() const;

 private:
  struct State;
  State& state() const;  // throws UsageError for a moved-from Thread
  bool join_for(std::chrono::nanoseconds timeout);
  void check_joinable() const;
  void finish() noexcept;

  std::shared_ptr<State> state_;
  std::thread thread_;
};

// RLock mirrors threading.RLock: a lock the holding thread may take again
// (each acquire needs its release). It knows its owner, so release() by a
// thread that does not hold it throws UsageError("cannot release un-acquired
// lock"), as Python raises RuntimeError; std::recursive_mutex leaves that
// undefined. RLock is Lockable: use it with std::lock_guard / std::unique_lock.
class RLock {
 public:
  // Blocks until this thread holds the lock; re-entrant.
  void acquire();
  // Python's acquire(blocking=False) and acquire(timeout=t): true when taken.
  [[nodiscard]] bool try_acquire();
  template <class Rep, class Period>
  [[nodiscard]] bool try_acquire_for(std::chrono::duration<Rep, Period> timeout) {
    return acquire_for(detail::saturating_ns(timeout));
  }
  // Undoes one acquire(); the lock is free again when every acquire is undone.
  void release();

  // True when the calling thread holds the lock (Python's _is_owned()).
  [[nodiscard]] bool is_owned() const;
  // How many times the calling thread holds it (0 when it does not).
  [[nodiscard]] unsigned depth() const;

  // The standard Lockable / TimedLockable names.
  void lock() { acquire(); }
  void unlock() { release(); }
  bool try_lock() { return try_acquire(); }
  template <class Rep, class Period>
  bool try_lock_for(std::chrono::duration<Rep, Period> timeout) {
    return try_acquire_for(timeout);
  }

 private:
  bool acquire_for(std::chrono::nanoseconds timeout);
  // nullopt: no deadline, wait as long as it takes.
  bool acquire_until(std::optional<std::chrono::steady_clock::time_point> deadline);

  mutable std::mutex mutex_;
  std::condition_variable released_;
  std::thread::id owner_;
  unsigned count_ = 0;
};

// --- how many threads a machine allows -----------------------------------------
//
// A new thread needs a pid (kernel.pid_max), a place under kernel.threads-max
// and under its user's RLIMIT_NPROC (`ulimit -u`; root is exempt), maybe one
// under the cgroup's pids.max, and a stack: `ulimit -s` bytes of address space
// (bounded by `ulimit -v`) in two memory mappings, the stack and its guard
// page, of the process's vm.max_map_count. The pid and the places come back
// when the thread ends; the stack only when the thread is joined (or at once
// when it ends, for a detached thread, which is how CPython runs its threads).

// Those limits with their current values and use, read from /proc and
// getrlimit, as one line for an error message; a limit that is used up says
// "reached".
[[nodiscard]] std::string thread_limits();

// How many more threads this process can start and keep until it joins them:
// what its free memory mappings (and address space, under `ulimit -v`) leave
// room for. `why` names the limit in a sentence for --help. Running threads
// are further bounded by the system-wide limits above, which change as other
// programs run.
struct ThreadCapacity {
  int threads;
  std::string why;
};
[[nodiscard]] ThreadCapacity unjoined_thread_capacity();

// What Thread::start throws when the thread cannot be created: a
// std::system_error with pthread_create's error code, whose message names the
// call and the limits (thread_limits()), e.g.
// "pthread_create (std::thread): Resource temporarily unavailable; this process
// has 113 threads; limits: vm.max_map_count=65530 (reached: ...), ...".
// threading.current_thread().name: the name of the conclab Thread running
// this code ("Thread-3", or what set_name() gave it), "MainThread" on the
// main thread, "Dummy-<tid>" on a thread conclab did not start.
[[nodiscard]] std::string current_thread_name();

class ThreadStartError : public std::system_error {
 public:
  explicit ThreadStartError(std::error_code code);
  [[nodiscard]] const char* what() const noexcept override { return message_.c_str(); }

 private:
  std::string message_;
};

}  // namespace conclab
