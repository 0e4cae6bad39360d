// signals.hpp — stop a program on SIGINT/SIGTERM the way Python's
// KeyboardInterrupt does, but also from threads blocked in a socket call.
//
//   conclab::stop_on_signals();          // once, in main, before the loop
//   for (;;) { auto [conn, peer] = listener.accept(); ... }
//                                        // Ctrl-C: accept() throws Interrupted
//
// The handler only sets a flag and writes one byte into a pipe (both
// async-signal-safe). Every blocking call of conclab's Socket waits with
// poll() on that pipe too, so whichever thread the kernel picks to run the
// handler, *every* thread blocked in a socket call wakes up and throws
// Interrupted, and a signal that arrives just before the call is not lost
// (the pipe stays readable). run_main() turns Interrupted into exit 0: a
// server asked to stop has not failed.
#pragma once

#include <csignal>
#include <initializer_list>
#include <stdexcept>

namespace conclab {

// Thrown by a blocking call when a stop signal has arrived (Python's
// KeyboardInterrupt). signal() is the signal's number.
class Interrupted : public std::runtime_error {
 public:
  explicit Interrupted(int signo);
  [[nodiscard]] int signal() const noexcept { return signo_; }

 private:
  int signo_;
};

// Installs the stop handler for `signals` (SIGINT and SIGTERM by default).
// Idempotent; safe to call from any thread, but signal dispositions are
// process-wide.
void stop_on_signals(std::initializer_list<int> signals = {SIGINT, SIGTERM});

// Whether a stop signal has arrived; which one (0 if none).
[[nodiscard]] bool stop_requested() noexcept;
[[nodiscard]] int stop_signal() noexcept;

// The read end of the stop pipe, readable once a stop signal has arrived;
// -1 when stop_on_signals() was never called. For poll()/select() loops.
[[nodiscard]] int stop_fd() noexcept;

// Throws Interrupted if a stop signal has arrived.
void throw_if_stopped();

// For tests and for a server that handled the stop and goes on: forget the
// signal that arrived (drains the pipe).
void clear_stop() noexcept;

}  // namespace conclab
