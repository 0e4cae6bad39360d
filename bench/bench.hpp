// bench.hpp — what the benchmark files of conclab-bench share.
#pragma once

#include <benchmark/benchmark.h>
#include <sched.h>
#include <sys/resource.h>

#include <atomic>
#include <chrono>
#include <exception>
#include <filesystem>
#include <functional>
#include <iterator>
#include <stdexcept>
#include <string>
#include <vector>

#include "conclab/clock.hpp"
#include "conclab/error.hpp"

namespace conclab::bench {

// One workload: `tasks` workers, each sleeping `sleep_ms`, or, when sleep_ms
// is 0, each doing kCpuIterations steps of arithmetic (the work:cpu rows).
struct Case {
  int tasks;
  int sleep_ms;
  [[nodiscard]] bool cpu() const { return sleep_ms == 0; }
};

// The CPU-bound task: the same loop as bench/python/bench_workers.py, sized
// so that one task takes about as long in both languages (~75 ms on the
// reference machine: 75 million steps in C++, 1 million in CPython, which
// runs each step as bytecode on big integers). With equal task times the
// speed-up of a model compares its concurrency, not its start-up cost.
inline constexpr long kCpuIterations = 75'000'000;
// About how long one such task takes here: sizes the repetitions of a row.
inline constexpr double kCpuTaskSeconds = 0.075;

// A linear congruential walk the compiler cannot fold away.
inline unsigned long spin(long iterations) {
  unsigned long x = 1;
  for (long i = 0; i < iterations; ++i) x = x * 6364136223846793005UL + 1442695040888963407UL;
  return x;
}

// One fan-out workload: `clients` at once, each request held `sleep_ms` by
// the server (bench/fanout.cpp).
struct FanoutCase {
  int clients;
  int sleep_ms;
};
// The book's table: 15 children or threads in the pool models, 4,000 bytes a reply.
inline constexpr int kFanoutWorkers = 15;
inline constexpr int kFanoutBytes = 4000;

struct Options {
  std::vector<Case> cases;
  std::vector<FanoutCase> fanout_cases;
  // Connections of a sleep-free fan-out case in all (R = this / C): the
  // book's table compares CPU per connection.
  int fanout_connections;
  double max_ideal_s;  // rows whose ideal time exceeds this are left out
  // Rows expected to take a second or more run this many repetitions (the
  // others Google Benchmark's --benchmark_repetitions, which main() sets).
  int long_repetitions;
};

// A row expected to run this long or longer is a long row (Options::long_repetitions).
inline constexpr double kLongRowSeconds = 1.0;

// CPU seconds used so far by this process and its reaped children. Google
// Benchmark's process CPU timer does not see children; this does.
inline double cpu_seconds() {
  auto total = [](int who) {
    rusage u{};
    ::getrusage(who, &u);
    auto s = [](const timeval& t) { return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) * 1e-6; };
    return s(u.ru_utime) + s(u.ru_stime);
  };
  return total(RUSAGE_SELF) + total(RUSAGE_CHILDREN);
}

// Runs one row's body. An exception (EAGAIN from a thread or fork under a low
// process limit, a lost pool task, ...) ends this row alone, with its message
// in the JSON (error_occurred, error_message) and on the console; the run goes
// on with the next row. The body's own destructors (RAII) have joined its
// threads and reaped its children by the time the exception arrives here, so
// the next row starts clean. failed_rows counts the failed measurements (each
// repetition of a row is one):
// conclab-bench exits 1 when there is any.
inline std::atomic<int> failed_rows{0};

// What a row throws when what it measures cannot be done at all (select()
// and a descriptor >= FD_SETSIZE): not a failure of the run. The row is
// written as a failed one whose error_message starts with "impossible: "
// (Google Benchmark 1.7 has no other way to skip a row), scripts/report shows
// it as such, and it does not count in failed_rows.
class Impossible : public std::runtime_error {
 public:
  explicit Impossible(const std::string& why) : std::runtime_error("impossible: " + why) {}
};

template <class Body>
void guarded(benchmark::State& state, Body&& body) noexcept {
  try {
    body();
  } catch (const Impossible& e) {
    state.SkipWithError(e.what());
  } catch (...) {
    state.SkipWithError(describe(std::current_exception()).c_str());
    ++failed_rows;
  }
}

// Sets the spin window (clock.hpp) for as long as it lives, then puts back
// the one before, even when the row fails.
class SpinWindowFor {
 public:
  explicit SpinWindowFor(std::chrono::microseconds window) noexcept : before_(spin_window()) {
    set_spin_window(window);
  }
  ~SpinWindowFor() { set_spin_window(before_); }
  SpinWindowFor(const SpinWindowFor&) = delete;
  SpinWindowFor& operator=(const SpinWindowFor&) = delete;

 private:
  std::chrono::microseconds before_;
};

// Pins the calling thread, and the threads it starts meanwhile, to one CPU
// (the first it may use) for as long as it lives. Left free, the scheduler
// puts the timing thread and its peer on the same CPU in one run and on two in
// the next, and on a virtual machine a round trip between two CPUs costs
// several times more (a CPU woken from idle for every message): the rows
// would measure where the threads landed. On one CPU the two take turns.
class OneCpu {
 public:
  OneCpu() {
    check(::sched_getaffinity(0, sizeof before_, &before_), "sched_getaffinity");
    int cpu = 0;
    while (!CPU_ISSET(cpu, &before_)) ++cpu;
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(cpu, &one);
    check(::sched_setaffinity(0, sizeof one, &one), "sched_setaffinity");
  }
  ~OneCpu() { ::sched_setaffinity(0, sizeof before_, &before_); }
  OneCpu(const OneCpu&) = delete;
  OneCpu& operator=(const OneCpu&) = delete;

 private:
  cpu_set_t before_{};
};

inline int open_descriptors() {
  return static_cast<int>(
      std::distance(std::filesystem::directory_iterator("/proc/self/fd"), std::filesystem::directory_iterator()));
}

// Registers `fn` as row `name`: on one CPU (OneCpu), guarded (an exception
// ends this row alone), and failed if it leaves a descriptor open (the rows
// share one process). The caller picks the timer (UseRealTime or UseManualTime).
inline benchmark::internal::Benchmark* add_row(const std::string& name, std::function<void(benchmark::State&)> fn,
                                               benchmark::TimeUnit unit) {
  auto row = [fn = std::move(fn)](benchmark::State& state) {
    guarded(state, [&] {
      OneCpu pinned;
      const int before = open_descriptors();
      fn(state);
      if (const int after = open_descriptors(); after != before)
        throw std::runtime_error(std::to_string(after) + " descriptors open after the row, " + std::to_string(before) +
                                 " before");
    });
  };
  return benchmark::RegisterBenchmark(name.c_str(), std::move(row))->Unit(unit);
}

// Registration of each benchmark family; called once from main().
void register_workers(const Options& options);
void register_fanout(const Options& options);
void register_micro();

}  // namespace conclab::bench
