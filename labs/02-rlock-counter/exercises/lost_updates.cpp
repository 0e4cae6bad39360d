// Exercise 02/lost_updates — stop losing updates: a mutex, then an atomic (warm-up, ~15 min).
//
// Task: this is counter_unsync.cpp with a --way flag, and both ways still
// increment their counter with no synchronisation: two threads lose updates,
// and ThreadSanitizer reports the race. Fix --way mutex by holding a
// std::mutex around each increment, and --way atomic by making its counter a
// std::atomic<long> incremented with fetch_add, with no lock at all. The
// grader runs both ways under ThreadSanitizer and wants counter= equal to
// expected=; it also checks that the atomic way takes no lock: with one
// thread it must count at least 1.25x faster than the lab's counter-mutex.
//
//   scripts/grade 02/lost_updates          grade it
//   scripts/grade --hint 02/lost_updates   a hint
#include <fmt/core.h>

#include <latch>
#include <string>
#include <vector>

#include "conclab/cli.hpp"
#include "conclab/clock.hpp"
#include "conclab/threading.hpp"

// --way mutex
volatile long mutex_counter = 0;  // TODO: guard it with a std::mutex

void work_mutex(int increments) {
  for (int i = 0; i < increments; ++i) mutex_counter = mutex_counter + 1;  // TODO: lock around it
}

// --way atomic
volatile long atomic_counter = 0;  // TODO: make it a std::atomic<long>

void work_atomic(int increments) {
  for (int i = 0; i < increments; ++i) atomic_counter = atomic_counter + 1;  // TODO: one fetch_add
}

int main(int argc, char** argv) {
  CLI::App app{"Exercise 02/lost_updates: a shared counter, made safe with a mutex or an atomic."};
  conclab::CounterFlags flags;
  conclab::add_counter_flags(app, flags);
  std::string way = "mutex";
  app.add_option("--way", way, "how the counter is made safe: mutex or atomic")
      ->check(CLI::IsMember({"mutex", "atomic"}))
      ->capture_default_str();

  return conclab::run_main(app, argc, argv, [&] {
    conclab::Stopwatch stopwatch;
    auto work = way == "mutex" ? work_mutex : work_atomic;
    std::latch start_line(flags.threads);  // the threads wait here for each other, then all count at once
    std::vector<conclab::Thread> threads;
    for (int i = 0; i < flags.threads; ++i) {
      threads.emplace_back([&start_line, work, n = flags.increments] {
        start_line.arrive_and_wait();
        work(n);
      });
      try {
        threads.back().start();
      } catch (...) {
        start_line.count_down(flags.threads - i);  // let the started ones go: joining them must not hang
        throw;
      }
    }
    for (auto& t : threads) t.join();
    long counter = 0;
    if (way == "mutex") counter = mutex_counter;
    if (way == "atomic") counter = atomic_counter;
    long expected = long{flags.threads} * flags.increments;
    fmt::print("model={} threads={} increments={} counter={} expected={} elapsed_s={:.3f}\n", way, flags.threads,
               flags.increments, counter, expected, stopwatch.seconds());
  });
}
