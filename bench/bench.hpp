// bench.hpp — what the benchmark files of conclab-bench share.
#pragma once

#include <benchmark/benchmark.h>
#include <sys/resource.h>

#include <string>
#include <vector>

namespace conclab::bench {

// One sleep-bound workload: `tasks` workers, each sleeping `sleep_ms`.
struct Case {
  int tasks;
  int sleep_ms;
};

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

// Registration of each benchmark family; called once from main().
void register_workers(const Options& options);
void register_micro();

}  // namespace conclab::bench
