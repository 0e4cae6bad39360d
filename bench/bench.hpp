// bench.hpp — what the benchmark files of conclab-bench share.
#pragma once

#include <benchmark/benchmark.h>
#include <sys/resource.h>

#include <atomic>
#include <chrono>
#include <exception>
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

// The CPU-bound task: the same loop in bench/python/bench_workers.py. About
// 1 ms in C++ and 50-100 ms in CPython on the reference machine.
inline constexpr long kCpuIterations = 1'000'000;

// A linear congruential walk the compiler cannot fold away.
inline unsigned long spin(long iterations) {
  unsigned long x = 1;
  for (long i = 0; i < iterations; ++i) x = x * 6364136223846793005UL + 1442695040888963407UL;
  return x;
}

struct Options {
  std::vector<Case> cases;
  double max_ideal_s;  // rows whose ideal time exceeds this are left out
};

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
// the next row starts clean. failed_rows counts the rows that failed:
// conclab-bench exits 1 when there is any.
inline std::atomic<int> failed_rows{0};

template <class Body>
void guarded(benchmark::State& state, Body&& body) noexcept {
  try {
    body();
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

// Registration of each benchmark family; called once from main().
void register_workers(const Options& options);
void register_micro();

}  // namespace conclab::bench
