// micro/... — the cost of one concurrency primitive, each beside its CPython
// equivalent in bench/python/.
#include <chrono>
#include <optional>
#include <string>
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

// Create, start and join one conclab::Thread (threading.Thread in Python).
void thread_create_join(benchmark::State& state) {
  for (auto _ : state) {
    Thread t([] {});
    t.start();
    t.join();
  }
}

// The same with a bare std::thread, to show what conclab::Thread adds
// (Python peer: _thread.start_new_thread, under threading.Thread).
void raw_thread_create_join(benchmark::State& state) {
  for (auto _ : state) std::thread([] {}).join();
}

// One acquire and release of an RLock nobody else wants.
void rlock_uncontended(benchmark::State& state) {
  RLock lock;
  for (auto _ : state) {
    lock.acquire();
    lock.release();
  }
}

// The same with two threads taking turns on one lock (lab 02's contention).
RLock contended_lock;
void rlock_contended(benchmark::State& state) {
  for (auto _ : state) {
    contended_lock.acquire();
    contended_lock.release();
  }
}

// fork + wait of a child that does nothing: start and join one conclab::Process.
// cpu_s: CPU seconds per fork + wait, the child's included (it is reaped
// within the iteration) and the parent's spin in join() too.
void fork_wait(benchmark::State& state) {
  const double cpu_before = cpu_seconds();
  for (auto _ : state) {
    Process p([] {});
    p.start();
    p.join();
  }
  state.counters["cpu_s"] = (cpu_seconds() - cpu_before) / static_cast<double>(state.iterations());
}

// temp[0] += 1 under temp.get_lock(), in one process.
void shared_array_locked_increment(benchmark::State& state) {
  SharedArray<long> temp(1, 0);
  for (auto _ : state) {
    std::lock_guard guard(temp.get_lock());
    temp[0] += 1;
  }
}

// dic[k] = v over 1,000 keys, and dic.get(k).
void shared_dict_set(benchmark::State& state) {
  SharedDict<int, long> dic(1000);
  int k = 0;
  for (auto _ : state) {
    dic.set(k, k);
    k = (k + 1) % 1000;
  }
}

void shared_dict_get(benchmark::State& state) {
  SharedDict<int, long> dic(1000);
  for (int k = 0; k < 1000; ++k) dic.set(k, k);
  int k = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(dic.get(k));
    k = (k + 1) % 1000;
  }
}

int identity(int x) { return x; }

// One pool.apply round trip: to a worker process and back. cpu_s: CPU
// seconds per round trip of this process (the caller and the pool's result
// thread) and of the workers, counted once the pool is joined; the spin of
// both sides (clock.hpp) is in it.
void pool_apply(benchmark::State& state) {
  std::optional<Pool> pool(std::in_place, 2);  // the spin window is read here, when the workers start
  const double cpu_before = cpu_seconds();
  for (auto _ : state) benchmark::DoNotOptimize(pool->apply(identity, 1));
  pool->close();
  pool->join();
  state.counters["cpu_s"] = (cpu_seconds() - cpu_before) / static_cast<double>(state.iterations());
}

// apply_async pipelined: 1,000 tasks in flight, then every get(); time per task.
void pool_apply_async(benchmark::State& state) {
  constexpr int kBatch = 1000;
  Pool pool(2);
  std::vector<AsyncResult<int>> results;
  results.reserve(kBatch);
  Stopwatch wall;
  for (auto _ : state) {
    results.clear();
    for (int i = 0; i < kBatch; ++i) results.push_back(pool.apply_async(identity, i));
    for (auto& r : results) benchmark::DoNotOptimize(r.get());
  }
  const double tasks = static_cast<double>(state.iterations()) * kBatch;
  state.SetItemsProcessed(state.iterations() * kBatch);
  // A plain number of microseconds: a kIsRate | kInvert counter would be
  // shown in seconds ("4.1s") by the console.
  state.counters["per_task_us"] = wall.seconds() / tasks * 1e6;
}

// Registers `fn` as row `name`, guarded: an exception ends this row alone.
benchmark::internal::Benchmark* add(const std::string& name, void (*fn)(benchmark::State&)) {
  return benchmark::RegisterBenchmark(name.c_str(), [fn](benchmark::State& state) { guarded(state, [&] { fn(state); }); });
}

// Registers `name` (the spin window as it is: 50 us by default) and
// `name/spin:off` (no spin at all), both wall time in microseconds.
void add_spin_pair(const std::string& name, void (*fn)(benchmark::State&)) {
  add(name, fn)->UseRealTime()->Unit(benchmark::kMicrosecond);
  benchmark::RegisterBenchmark((name + "/spin:off").c_str(), [fn](benchmark::State& state) {
    guarded(state, [&] {
      SpinWindowFor off(std::chrono::microseconds(0));
      fn(state);
    });
  })->UseRealTime()->Unit(benchmark::kMicrosecond);
}

}  // namespace

// Nothing but a compiler barrier: what Google Benchmark's loop adds per
// iteration. Debian's libbenchmark is a debug build of the library (its
// "***WARNING*** Library was built as DEBUG"); the loop itself is inlined
// from the header into conclab-bench, built Release, and this row shows what
// is left. Registered twice: in long batches (the loop alone), and one
// iteration per repetition (the library's own start and stop around it,
// which is all it adds to a row that runs once per repetition).
void empty(benchmark::State& state) {
  for (auto _ : state) benchmark::ClobberMemory();
}

void register_micro() {
  // fork-wait first: the cost of fork() grows with the process (its page tables).
  add_spin_pair("micro/fork-wait", fork_wait);
  add_spin_pair("micro/pool-apply", pool_apply);
  add("micro/pool-apply-async/batch:1000", pool_apply_async)->UseRealTime()->Unit(benchmark::kMicrosecond);
  add("micro/shared-array-locked-increment", shared_array_locked_increment)->Unit(benchmark::kNanosecond);
  add("micro/shared-dict-set", shared_dict_set)->Unit(benchmark::kNanosecond);
  add("micro/shared-dict-get", shared_dict_get)->Unit(benchmark::kNanosecond);
  add("micro/rlock-acquire-release", rlock_uncontended)->Unit(benchmark::kNanosecond);
  // Threads(2): the time is per acquire/release pair of one thread, both running.
  add("micro/rlock-contended", rlock_contended)->Threads(2)->UseRealTime()->Unit(benchmark::kNanosecond);
  add("micro/thread-create-join", thread_create_join)->UseRealTime()->Unit(benchmark::kMicrosecond);
  add("micro/raw-thread-create-join", raw_thread_create_join)->UseRealTime()->Unit(benchmark::kMicrosecond);
  add("micro/empty", empty)->UseRealTime()->Unit(benchmark::kNanosecond);
  add("micro/empty/one-iteration", empty)->UseRealTime()->Iterations(1)->Unit(benchmark::kNanosecond);
}

}  // namespace conclab::bench
