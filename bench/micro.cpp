// micro/... — the cost of one concurrency primitive, each beside its CPython
// equivalent in bench/python/.
#include <thread>

#include "bench.hpp"
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

}  // namespace

void register_micro() {
  benchmark::RegisterBenchmark("micro/thread-create-join", thread_create_join)->UseRealTime()->Unit(benchmark::kMicrosecond);
  benchmark::RegisterBenchmark("micro/raw-thread-create-join", raw_thread_create_join)
      ->UseRealTime()
      ->Unit(benchmark::kMicrosecond);
}

}  // namespace conclab::bench
