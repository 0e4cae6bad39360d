// counter_mutex.cpp — the same counter, a std::mutex around each increment (lab 02, step 2).
//
// Now counter= equals expected=. Observe the elapsed time against
// counter_unsync and against --threads 1: with a lock taken per increment the
// threads mostly wait for each other, so two threads can be slower than one.
// See also: counter_unsync.cpp, counter_atomic.cpp, python/counter_mutex.py.
#include <fmt/core.h>

#include <mutex>
#include <vector>

#include "conclab/cli.hpp"
#include "conclab/clock.hpp"
#include "conclab/threading.hpp"

long counter = 0;
std::mutex counter_mutex;

void work(int increments) {
  for (int i = 0; i < increments; ++i) {
    std::lock_guard lock(counter_mutex);
    ++counter;
  }
}

int main(int argc, char** argv) {
  CLI::App app{"Lab 02: increment a shared counter under a mutex."};
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
    fmt::print("model=mutex threads={} increments={} counter={} expected={} elapsed_s={:.3f}\n", flags.threads,
               flags.increments, counter, expected, stopwatch.seconds());
  });
}
