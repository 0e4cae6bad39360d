// counter_rlock_outside.cpp — the RLock around the increment only (lab 02, step 5).
//
// The same ten threads, but each releases the lock before it sleeps: the lock
// protects the counter, not the sleep. Observe: still 1 to 10 exactly once
// each (in some order), and the run takes 1 s instead of 10.
// See also: counter_rlock.cpp, python/counter_rlock_outside.py.
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

void func(std::chrono::milliseconds sleep) {
  long mine = 0;
  {
    std::lock_guard guard(lock);  // released at the end of this block
    mine = ++counter;
  }
  std::this_thread::sleep_for(sleep);  // no lock held: the sleeps overlap
  fmt::print("{}\n", mine);
}

int main(int argc, char** argv) {
  CLI::App app{"Lab 02: the RLock counter, sleeping outside the lock."};
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
    fmt::print("model=rlock-outside tasks={} sleep_ms={} counter={} expected={} elapsed_s={:.3f}\n", flags.tasks,
               flags.sleep_ms, counter, flags.tasks, stopwatch.seconds());
  });
}
