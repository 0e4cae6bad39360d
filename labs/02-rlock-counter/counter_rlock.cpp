// counter_rlock.cpp — the seed's RLock program (lab 02, step 4).
//
// Ten threads each take the RLock, increment the counter, sleep one second
// *while still holding it*, print, and release. Observe: the numbers come out
// one per second, 1 to 10, and the run takes 10 s — the lock turned ten
// threads back into a serial program.
// See also: counter_rlock_outside.cpp (the fix), python/counter_rlock.py.
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
  lock.acquire();
  ++counter;
  std::this_thread::sleep_for(sleep);  // the lock is still held here
  fmt::print("{}\n", counter);
  lock.release();
}

int main(int argc, char** argv) {
  CLI::App app{"Lab 02: the seed's RLock counter, sleeping while holding the lock."};
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
