// workers/<model>/tasks:N/sleep_ms:T — the seeds' sleep-bound worker, run by
// every concurrency model. A model is one entry in kModels below.
#include <fmt/core.h>

#include <chrono>
#include <cmath>
#include <thread>
#include <vector>

#include "bench.hpp"
#include "conclab/clock.hpp"
#include "conclab/threading.hpp"

namespace conclab::bench {
namespace {

using std::chrono::milliseconds;

// The unit of work every model runs, as in the lab programs (without the print).
void worker(milliseconds sleep) { std::this_thread::sleep_for(sleep); }

void run_serial(int tasks, milliseconds sleep) {
  for (int i = 0; i < tasks; ++i) worker(sleep);
}

void run_threaded(int tasks, milliseconds sleep) {
  std::vector<Thread> threads;
  threads.reserve(static_cast<size_t>(tasks));
  for (int i = 0; i < tasks; ++i) {
    threads.emplace_back(worker, sleep);
    threads.back().start();
  }
  for (auto& t : threads) t.join();
}

struct Model {
  const char* name;
  int (*concurrency)(int tasks);  // how many workers run at once
  void (*run)(int tasks, milliseconds sleep);
};

constexpr Model kModels[] = {
    {"serial", [](int) { return 1; }, run_serial},
    {"threaded", [](int tasks) { return tasks; }, run_threaded},
};

// T x ceil(N / concurrency): the wall time with zero overhead.
double ideal_seconds(const Model& model, Case c) {
  return c.sleep_ms / 1000.0 * std::ceil(double(c.tasks) / model.concurrency(c.tasks));
}

void run_case(benchmark::State& state, const Model& model, Case c) {
  const double ideal_s = ideal_seconds(model, c);
  const double cpu_before = cpu_seconds();
  Stopwatch wall;
  for (auto _ : state) model.run(c.tasks, milliseconds(c.sleep_ms));
  const double iterations = static_cast<double>(state.iterations());
  const double measured_s = wall.seconds() / iterations;

  state.counters["ideal_s"] = ideal_s;
  state.counters["efficiency"] = ideal_s / measured_s;
  state.counters["overhead_us"] = (measured_s - ideal_s) / c.tasks * 1e6;
  state.counters["cpu_s"] = (cpu_seconds() - cpu_before) / iterations;
  state.counters["tasks"] = c.tasks;
  state.counters["sleep_ms"] = c.sleep_ms;
}

}  // namespace

void register_workers(const Options& options) {
  for (const Model& model : kModels) {
    for (Case c : options.cases) {
      if (ideal_seconds(model, c) > options.max_ideal_s) continue;
      auto name = fmt::format("workers/{}/tasks:{}/sleep_ms:{}", model.name, c.tasks, c.sleep_ms);
      benchmark::RegisterBenchmark(name.c_str(), run_case, model, c)->UseRealTime()->Unit(benchmark::kMillisecond);
    }
  }
}

}  // namespace conclab::bench
