// counter_unsync.cpp — threads increment one counter with no lock (lab 02, step 1).
//
// DELIBERATE DATA RACE: two threads read-modify-write the same variable at
// once, which is undefined behaviour in C++ (ThreadSanitizer reports it; this
// program is left out of the TSan run). Observe counter= below expected=:
// increments are lost when both threads read the same old value.
// See also: counter_mutex.cpp (the fix), counter_atomic.cpp, python/counter_unsync.py.
#include <fmt/core.h>

#include <vector>

#include "conclab/cli.hpp"
#include "conclab/clock.hpp"
#include "conclab/threading.hpp"

// volatile only stops the compiler from merging the loop into one addition;
// it does not make the increment atomic.
volatile long counter = 0;

void work(int increments) {
  for (int i = 0; i < increments; ++i) counter = counter + 1;  // load, add, store: not one step
}

int main(int argc, char** argv) {
  CLI::App app{"Lab 02: increment a shared counter without a lock (a deliberate race)."};
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
    fmt::print("lost updates: {}\n", expected - counter);
    fmt::print("model=unsync threads={} increments={} counter={} expected={} elapsed_s={:.3f}\n", flags.threads,
               flags.increments, counter, expected, stopwatch.seconds());
  });
}
