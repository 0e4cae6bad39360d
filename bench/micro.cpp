// micro/... — the cost of one concurrency primitive, each beside its CPython
// equivalent in bench/python/.
#include <thread>

#include "bench.hpp"
#include "conclab/process.hpp"
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
void fork_wait(benchmark::State& state) {
  for (auto _ : state) {
    Process p([] {});
    p.start();
    p.join();
  }
}

}  // namespace

void register_micro() {
  benchmark::RegisterBenchmark("micro/fork-wait", fork_wait)->UseRealTime()->Unit(benchmark::kMicrosecond);
  benchmark::RegisterBenchmark("micro/rlock-acquire-release", rlock_uncontended)->Unit(benchmark::kNanosecond);
  // Threads(2): the time is per acquire/release pair of one thread, both running.
  benchmark::RegisterBenchmark("micro/rlock-contended", rlock_contended)
      ->Threads(2)
      ->UseRealTime()
      ->Unit(benchmark::kNanosecond);
  benchmark::RegisterBenchmark("micro/thread-create-join", thread_create_join)->UseRealTime()->Unit(benchmark::kMicrosecond);
  benchmark::RegisterBenchmark("micro/raw-thread-create-join", raw_thread_create_join)
      ->UseRealTime()
      ->Unit(benchmark::kMicrosecond);
}

}  // namespace conclab::bench
