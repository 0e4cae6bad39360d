// workers/<model>/tasks:N/sleep_ms:T and workers/<model>/tasks:N/work:cpu —
// the seeds' worker, run by every concurrency model. A model is one entry in
// kModels below: a name, how many tasks it runs at once, and how it runs them.
#include <fmt/core.h>

#include <algorithm>
#include <chrono>
#include <functional>
#include <memory>
#include <cmath>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <vector>

#include "bench.hpp"
#include "conclab/clock.hpp"
#include "conclab/pool.hpp"
#include "conclab/process.hpp"
#include "conclab/shm.hpp"
#include "conclab/threading.hpp"

namespace conclab::bench {
namespace {

// The unit of work of every model: sleep (as in the lab programs, without the
// print), or a fixed amount of arithmetic that keeps one core busy.
void work(const Case& c) {
  if (c.cpu()) {
    benchmark::DoNotOptimize(spin(kCpuIterations));
  } else {
    std::this_thread::sleep_for(std::chrono::milliseconds(c.sleep_ms));
  }
}

void run_serial(const Case& c) {
  for (int i = 0; i < c.tasks; ++i) work(c);
}

// One conclab::Thread per task, each running `task`.
template <class Task>
void run_in_threads(int tasks, Task task) {
  std::vector<Thread> threads;
  threads.reserve(static_cast<size_t>(tasks));
  for (int i = 0; i < tasks; ++i) {
    threads.emplace_back(task);
    threads.back().start();
  }
  for (auto& t : threads) t.join();
}

void run_threaded(const Case& c) {
  run_in_threads(c.tasks, [&] { work(c); });
}

// One conclab::Process per task (lab 03); a child that fails fails the row.
void run_forked(const Case& c) {
  std::vector<Process> children;
  children.reserve(static_cast<size_t>(c.tasks));
  for (int i = 0; i < c.tasks; ++i) {
    children.emplace_back([&c] { work(c); });
    children.back().start();
  }
  for (auto& p : children) {
    p.join();
    if (p.exitcode() != 0) throw std::runtime_error("forked: a child ended with " + Process::describe_status(*p.exitcode()));
  }
}

// A process per task, each writing its result (its index) into a
// SharedArray and a SharedDict, as lab 04's children do.
void run_shared_memory(const Case& c) {
  const auto n = static_cast<size_t>(c.tasks);
  SharedArray<long> results(n, -1);
  SharedDict<int, long> by_task(n);
  std::vector<Process> children;
  children.reserve(n);
  for (int i = 0; i < c.tasks; ++i) {
    children.emplace_back([&, i] {
      work(c);
      results[static_cast<size_t>(i)] = i;
      by_task.set(i, i);
    });
    children.back().start();
  }
  for (auto& p : children) p.join();
  for (int i = 0; i < c.tasks; ++i)
    if (results[static_cast<size_t>(i)] != i || by_task.get(i) != i)
      throw std::runtime_error("shared-memory: a result did not arrive");
}

// Lab 02's counter: every task increments a shared counter under an RLock,
// holding it across the work (the seed) or around the increment only.
template <bool kHoldAcrossWork>
void run_thread_locked(const Case& c) {
  RLock lock;
  long counter = 0;
  run_in_threads(c.tasks, [&] {
    std::unique_lock guard(lock);
    ++counter;
    if (!kHoldAcrossWork) guard.unlock();
    work(c);
  });
  if (counter != c.tasks) throw std::logic_error("thread-locked: lost an increment");
}

// The pools get one worker per task, at most kPoolCap.
constexpr int kPoolCap = 100;
int pool_size(int tasks) { return std::min(tasks, kPoolCap); }

// The task of the pool models: a plain function, as a process pool needs.
int pool_task(int sleep_ms) {
  work(Case{1, sleep_ms});
  return sleep_ms;
}

// The warm-up task: a round trip through every worker, no work.
int echo(int value) { return value; }

// A pool mapping the work over the tasks, one task per chunk. The pool is
// made (and warmed up with an empty task per worker) once per row, before
// the timing starts, and ended after it; ending it reaps its workers, so
// their CPU time is counted: the warm-up's too, which is why it does no work.
template <class PoolType>
std::function<void()> prepare_pool(const Case& c, std::shared_ptr<void>& keep) {
  auto pool = std::make_shared<PoolType>(pool_size(c.tasks));
  std::vector<int> items(static_cast<size_t>(c.tasks), c.sleep_ms);
  pool->map(echo, items, 1);
  keep = pool;
  return [pool = pool.get(), items] {
    if (pool->map(pool_task, items, 1).size() != items.size()) throw std::logic_error("pool: results missing");
  };
}

template <void (*Run)(const Case&)>
std::function<void()> prepare_simple(const Case& c, std::shared_ptr<void>&) {
  return [c] { Run(c); };
}

struct Model {
  const char* name;
  int (*concurrency)(int tasks);  // how many tasks run at once
  // Sets up what one row needs (kept alive in `keep` until the row ends)
  // and returns one run of the row.
  std::function<void()> (*prepare)(const Case& c, std::shared_ptr<void>& keep);
};

const Model kModels[] = {
    {"serial", [](int) { return 1; }, prepare_simple<run_serial>},
    {"threaded", [](int tasks) { return tasks; }, prepare_simple<run_threaded>},
    {"thread-pool", pool_size, prepare_pool<ThreadPool>},
    {"thread-locked", [](int) { return 1; }, prepare_simple<run_thread_locked<true>>},
    {"thread-locked-outside", [](int tasks) { return tasks; }, prepare_simple<run_thread_locked<false>>},
    {"forked", [](int tasks) { return tasks; }, prepare_simple<run_forked>},
    {"process-pool", pool_size, prepare_pool<Pool>},
    {"shared-memory", [](int tasks) { return tasks; }, prepare_simple<run_shared_memory>},
};

// T x ceil(N / concurrency): the wall time of a sleep-bound case with zero
// overhead. CPU-bound cases have no such figure (it depends on the cores).
double ideal_seconds(const Model& model, const Case& c) {
  return c.sleep_ms / 1000.0 * std::ceil(double(c.tasks) / model.concurrency(c.tasks));
}

void measure_case(benchmark::State& state, const Model& model, Case c) {
  std::shared_ptr<void> keep;
  auto run = model.prepare(c, keep);
  const double cpu_before = cpu_seconds();
  Stopwatch wall;
  for (auto _ : state) run();
  const double iterations = static_cast<double>(state.iterations());
  const double measured_s = wall.seconds() / iterations;
  keep.reset();  // a pool ends here: its workers are reaped and their CPU counted

  state.counters["tasks"] = c.tasks;
  state.counters["cpu_s"] = (cpu_seconds() - cpu_before) / iterations;
  if (!c.cpu()) {
    const double ideal_s = ideal_seconds(model, c);
    state.counters["sleep_ms"] = c.sleep_ms;
    state.counters["ideal_s"] = ideal_s;
    state.counters["efficiency"] = ideal_s / measured_s;
    state.counters["overhead_us"] = (measured_s - ideal_s) / c.tasks * 1e6;
  }
}

// One row. A failure anywhere in it (a pool that cannot start its workers,
// a thread or fork refused, a lost task) ends this row only (guarded()).
void run_case(benchmark::State& state, const Model& model, Case c) {
  guarded(state, [&] { measure_case(state, model, c); });
}

// About how long one run of a row takes: the ideal time of a sleep-bound
// row; for a CPU-bound one, its tasks spread over the cores it can use.
double expected_seconds(const Model& model, const Case& c) {
  if (!c.cpu()) return ideal_seconds(model, c);
  const int cores = std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  return kCpuTaskSeconds * std::ceil(double(c.tasks) / std::min(model.concurrency(c.tasks), cores));
}

}  // namespace

void register_workers(const Options& options) {
  for (const Model& model : kModels) {
    for (const Case& c : options.cases) {
      if (ideal_seconds(model, c) > options.max_ideal_s) continue;
      auto name = c.cpu() ? fmt::format("workers/{}/tasks:{}/work:cpu", model.name, c.tasks)
                          : fmt::format("workers/{}/tasks:{}/sleep_ms:{}", model.name, c.tasks, c.sleep_ms);
      auto* row = benchmark::RegisterBenchmark(name.c_str(), run_case, model, c);
      row->UseRealTime()->Unit(benchmark::kMillisecond);
      if (expected_seconds(model, c) >= kLongRowSeconds) row->Repetitions(options.long_repetitions);
    }
  }
}

}  // namespace conclab::bench
