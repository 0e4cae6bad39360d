// counter_atomic.cpp — the same counter as one std::atomic (lab 02, step 3).
//
// fetch_add is a single indivisible read-modify-write done by the CPU: no
// lock, no lost update. Observe the elapsed time against counter_mutex; the
// threads still contend for the one cache line that holds the counter.
// See also: counter_mutex.cpp, python/counter_atomic.py.
#include <fmt/core.h>

#include <atomic>
#include <vector>

#include "conclab/cli.hpp"
#include "conclab/clock.hpp"
#include "conclab/threading.hpp"

std::atomic<long> counter{0};

void work(int increments) {
  for (int i = 0; i < increments; ++i) counter.fetch_add(1, std::memory_order_relaxed);
}

int main(int argc, char** argv) {
  CLI::App app{"Lab 02: increment a shared std::atomic counter."};
  conclab::CounterFlags flags;
  conclab::add_counter_flags(app, flags);

  return conclab::run_main(app, argc, argv, [&] {
    conclab::Stopwatch stopwatch;
    std::vector<conclab::Thread> threads;
    for (int i = 0; i < flags.threads; ++i) {
      threads.emplace_back(work, flags.increments);
      threads.back().start();
    }
    for (auto& t : threads) t.join();
    long expected = long{flags.threads} * flags.increments;
    fmt::print("model=atomic threads={} increments={} counter={} expected={} elapsed_s={:.3f}\n", flags.threads,
               flags.increments, counter.load(), expected, stopwatch.seconds());
  });
}
