// threaded.cpp — five workers, each in its own thread (lab 01, the "after").
//
// The same worker as serial.cpp, started with conclab::Thread. While one
// thread sleeps the others run, so five one-second sleeps overlap: about 1 s
// in all. Observe the elapsed time, and that the "worker" lines all appear at once.
// See also: serial.cpp, python/threaded.py (the seed's program).
#include <fmt/core.h>

#include <algorithm>
#include <chrono>
#include <thread>
#include <vector>

#include "conclab/cli.hpp"
#include "conclab/clock.hpp"
#include "conclab/threading.hpp"

void worker(std::chrono::milliseconds sleep) {
  fmt::print("worker\n");
  std::this_thread::sleep_for(sleep);
}

int main(int argc, char** argv) {
  CLI::App app{"Lab 01: run each worker in its own thread."};
  conclab::WorkerFlags flags{.tasks = 5, .sleep_ms = 1000};
  // One thread per task, all joined at the end: this machine bounds --tasks (see --help).
  auto capacity = conclab::unjoined_thread_capacity();
  conclab::add_worker_flags(app, flags, std::min(capacity.threads, conclab::kMaxTasks), capacity.why);

  return conclab::run_main(app, argc, argv, [&] {
    conclab::Stopwatch stopwatch;
    std::vector<conclab::Thread> threads;
    for (int i = 0; i < flags.tasks; ++i) {
      threads.emplace_back(worker, flags.sleep());
      threads.back().start();
    }
    // The seed never joins: Python waits for its threads at exit. In C++ we
    // wait for them explicitly, so that the time we print includes them.
    for (auto& t : threads) t.join();
    double elapsed = stopwatch.seconds();

    double expected = flags.sleep_ms / 1000.0;  // the sleeps overlap
    fmt::print("elapsed {:.3f} s (expected about {:.3f} s: {} tasks x {} ms, all at once)\n", elapsed, expected,
               flags.tasks, flags.sleep_ms);
    fmt::print("model=threaded tasks={} sleep_ms={} elapsed_s={:.3f}\n", flags.tasks, flags.sleep_ms, elapsed);
  });
}
