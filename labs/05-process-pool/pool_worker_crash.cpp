// pool_worker_crash.cpp — a task that kills its own worker (lab 05).
//
// Six tasks on a pool of two; task 2 sends its own worker SIGKILL. conclab's
// Pool sees the worker die, fails task 2 with an error naming the signal,
// starts a new worker and finishes the other five. Observe the error line and
// replaced=1. CPython's Pool loses task 2 and waits for it forever: compare
// with python/pool_worker_crash.py (run it with a timeout).
// See also: pool_demo.cpp.
#include <fmt/core.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <thread>
#include <vector>

#include "conclab/cli.hpp"
#include "conclab/clock.hpp"
#include "conclab/pool.hpp"

int task(int i) {
  if (i == 2) ::raise(SIGKILL);  // this worker dies here, mid-task
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  return i * 10;
}

int main(int argc, char** argv) {
  CLI::App app{"Lab 05: a task kills its worker; the pool reports it and carries on."};
  return conclab::run_main(app, argc, argv, [&] {
    conclab::Stopwatch stopwatch;
    conclab::Pool pool(2);
    std::vector<conclab::AsyncResult<int>> results;
    for (int i = 0; i < 6; ++i) results.push_back(pool.apply_async(task, i));
    int ok = 0, failed = 0;
    for (int i = 0; i < 6; ++i) {
      try {
        fmt::print("task {}: {}\n", i, results[static_cast<size_t>(i)].get());
        ++ok;
      } catch (const conclab::WorkerLost& e) {
        fmt::print("task {}: error: {}\n", i, e.what());
        ++failed;
      }
    }
    pool.close();
    pool.join();
    fmt::print("model=pool-crash tasks=6 ok={} failed={} replaced={} elapsed_s={:.3f}\n", ok, failed,
               pool.workers_replaced(), stopwatch.seconds());
  });
}
