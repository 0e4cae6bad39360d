// Exercise 02/rlock_sleep — the seed's RLock program, without the wait (warm-up, ~10 min).
//
// Task: each of the ten threads takes the RLock, increments the counter,
// sleeps a second and prints *while still holding the lock*, so the threads
// run one after another and the program takes 10 s. Make it take about one
// sleep, whatever --tasks is, without losing a count: every number from 1 to
// --tasks must still be printed exactly once (in any order), and counter=
// must equal expected=. The grader runs 10 tasks of 100 ms, and it must beat
// the unchanged program's 4 tasks in a row; it also runs it under
// ThreadSanitizer.
//
//   scripts/grade 02/rlock_sleep          grade it
//   scripts/grade --hint 02/rlock_sleep   a hint
#include <fmt/core.h>

#include <algorithm>
#include <chrono>
#include <mutex>
#include <thread>
#include <vector>

#include "conclab/cli.hpp"
#include "conclab/clock.hpp"
#include "conclab/threading.hpp"

long counter = 0;
conclab::RLock lock;

// TODO: hold the lock only while the thread touches what the threads share.
void func(std::chrono::milliseconds sleep) {
  lock.acquire();
  ++counter;
  std::this_thread::sleep_for(sleep);  // the lock is still held here
  fmt::print("{}\n", counter);
  lock.release();
}

int main(int argc, char** argv) {
  CLI::App app{"Exercise 02/rlock_sleep: the seed's RLock counter, without sleeping under the lock."};
  conclab::WorkerFlags flags{.tasks = 10, .sleep_ms = 1000};
  // One thread per task, all joined at the end: this machine bounds --tasks (see --help).
  auto capacity = conclab::unjoined_thread_capacity();
  conclab::add_worker_flags(app, flags, std::min(capacity.threads, conclab::kMaxTasks), capacity.why);

  return conclab::run_main(app, argc, argv, [&] {
    conclab::Stopwatch stopwatch;
    std::vector<conclab::Thread> threads;
    for (int i = 0; i < flags.tasks; ++i) {
      threads.emplace_back(func, flags.sleep());
      threads.back().start();
    }
    for (auto& t : threads) t.join();
    fmt::print("model=rlock tasks={} sleep_ms={} counter={} expected={} elapsed_s={:.3f}\n", flags.tasks,
               flags.sleep_ms, counter, flags.tasks, stopwatch.seconds());
  });
}
