// cli.hpp — the command-line rules every conclab program follows (docs/DESIGN.md):
//
//   --help                  usage on stdout, exit 0
//   bad flag or value       one line on stderr, exit 2
//   failed system call      "error: <call>: <strerror>" on stderr, exit 1
//   stdout                  line-buffered, as on a terminal, also into a pipe:
//                           each line appears when it is printed, so what a
//                           lab shows by *when* lines appear (one per second,
//                           all at once) survives `| cat` and `| tee`
//
// A program declares its flags on a CLI11 app and hands its body to run_main:
//
//   int main(int argc, char** argv) {
//     CLI::App app{"what this program shows"};
//     conclab::WorkerFlags flags{.tasks = 5, .sleep_ms = 1000};
//     conclab::add_worker_flags(app, flags);
//     return conclab::run_main(app, argc, argv, [&] { ... });
//   }
#pragma once

#include <CLI/CLI.hpp>
#include <chrono>
#include <concepts>
#include <exception>
#include <optional>
#include <string>
#include <vector>
#include <type_traits>

#include "conclab/signals.hpp"

namespace conclab {

enum class Backend;  // selectors.hpp

inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;  // a system call or the work itself failed
inline constexpr int kExitUsage = 2;    // bad flag or value

// The flags of the worker labs and benchmarks: how many tasks, how long each sleeps.
struct WorkerFlags {
  int tasks = 5;
  int sleep_ms = 1000;
  [[nodiscard]] std::chrono::milliseconds sleep() const { return std::chrono::milliseconds(sleep_ms); }
};

// The flags of the counter labs: how many threads, how many increments each.
struct CounterFlags {
  int threads = 2;
  int increments = 1'000'000;
};

// The flags of the networking labs: where a server listens or a client
// connects. Port 0 makes a server take any free port (it prints which).
struct NetFlags {
  std::string host = "127.0.0.1";
  int port = 0;
};

inline constexpr int kMaxTasks = 100'000;
inline constexpr int kMaxThreads = 1'000;
inline constexpr int kMaxIncrements = 100'000'000;
inline constexpr int kMaxSleepMs = 3'600'000;

// A CLI11 check: the value is an integer in [low, high], else a clear message.
CLI::Validator int_in_range(int low, int high);

// Adds --tasks and --sleep-ms (both positive integers, bounded) to `app`.
// A program that starts a thread per task passes what the machine allows
// (conclab::unjoined_thread_capacity()): a lower `max_tasks`, and in `why` the
// limit that sets it, for --help.
void add_worker_flags(CLI::App& app, WorkerFlags& flags, int max_tasks = kMaxTasks, const std::string& why = "");

// Adds --threads and --increments (positive integers, bounded) to `app`.
void add_counter_flags(CLI::App& app, CounterFlags& flags);

// Adds --selector (select, poll, epoll, epoll-edge: selectors.hpp's back
// ends) to `app`, with `backend` as the default; `allowed` limits the
// choice (an event loop that does not drain its sockets cannot take
// epoll-edge). A name outside it is a usage error (exit 2) naming the choices.
void add_selector_flag(CLI::App& app, Backend& backend, std::vector<Backend> allowed = {});

// Adds --host and --port to `app`, with `flags` as the defaults (a seed's
// port). `role` says what they mean: "listen on" (port 0..65535, 0 picks a
// free port) or "connect to" (1..65535).
void add_net_flags(CLI::App& app, NetFlags& flags, const std::string& role);

// Parses argv by the rules above. Returns std::nullopt when the program should
// go on, or the exit code it should return with (after printing usage or the
// one-line error).
[[nodiscard]] std::optional<int> parse_args(CLI::App& app, int argc, char** argv);

// Makes stdout line-buffered (a pipe or a file would get it in blocks of 4 KiB).
void line_buffered_stdout() noexcept;

// Prints "error: <what>" on stderr for the exception in flight; returns kExitFailure.
int report_exception(std::exception_ptr error) noexcept;

// Runs `body` (returning void or an exit code) and turns any exception into
// "error: ..." on stderr and exit 1.
template <class Body>
int run_main(Body&& body) noexcept {
  try {
    if constexpr (std::is_void_v<std::invoke_result_t<Body>>) {
      body();
      return kExitOk;
    } else {
      return static_cast<int>(body());
    }
  } catch (const Interrupted& stop) {
    // SIGINT/SIGTERM after stop_on_signals(): asked to stop, not a failure.
    return kExitOk;
  } catch (...) {
    return report_exception(std::current_exception());
  }
}

// Ignores SIGPIPE, as Python does: writing to a closed pipe or socket is then
// an error (EPIPE) the program reports, never a silent death with status 141.
void ignore_sigpipe() noexcept;

// Makes stdout line-buffered, ignores SIGPIPE, parses the command line, then
// runs `body` as above.
template <class Body>
int run_main(CLI::App& app, int argc, char** argv, Body&& body) noexcept {
  line_buffered_stdout();
  ignore_sigpipe();
  std::optional<int> code;
  try {
    code = parse_args(app, argc, argv);
  } catch (...) {
    return report_exception(std::current_exception());
  }
  if (code) return *code;
  return run_main(std::forward<Body>(body));
}

}  // namespace conclab
