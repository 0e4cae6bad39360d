// pool_demo.cpp — the seed's Pool(5) program (lab 05).
//
// Foo sleeps 2 s and returns i+100. apply() and apply_async().get() each
// wait for one task; then ten apply_async calls with the callback Bar return
// at once, "end" is printed, and close() + join() wait for the ten. Observe:
// the callbacks print in two waves of five (five workers), about 8 s in all
// (run_main makes stdout line-buffered, so `| cat` shows the waves too).
// See also: pool_worker_crash.cpp, python/pool_demo.py (the seed's program).
#include <fmt/core.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "conclab/cli.hpp"
#include "conclab/clock.hpp"
#include "conclab/pool.hpp"

// Runs in a worker process. The sleep comes as an argument, as in the Python
// original: a worker does not see this program's variables (see README).
int Foo(int i, int sleep_ms) {
  std::this_thread::sleep_for(std::chrono::milliseconds(sleep_ms));
  return i + 100;
}

std::atomic<int> callbacks{0};

void Bar(const int& arg) {
  fmt::print("{}\n", arg);  // runs in the pool's result thread of this process
  ++callbacks;
}

int main(int argc, char** argv) {
  CLI::App app{"Lab 05: the seed's process pool: apply, apply_async, callbacks, close, join."};
  int processes = 5;
  conclab::WorkerFlags flags{.tasks = 10, .sleep_ms = 2000};
  app.add_option("--processes", processes, "pool size")->check(conclab::int_in_range(1, 100));
  conclab::add_worker_flags(app, flags);

  return conclab::run_main(app, argc, argv, [&] {
    const int sleep_ms = flags.sleep_ms;
    conclab::Stopwatch stopwatch;
    conclab::Pool pool(processes);
    fmt::print("{}\n", pool.apply(Foo, 1, sleep_ms));
    fmt::print("{}\n", pool.apply_async(Foo, 1, sleep_ms).get());
    for (int i = 0; i < flags.tasks; ++i) pool.apply_async(Foo, std::tuple{i, sleep_ms}, Bar);
    fmt::print("end\n");
    pool.close();
    pool.join();
    fmt::print("model=process-pool processes={} tasks={} sleep_ms={} callbacks={} elapsed_s={:.3f}\n", processes,
               flags.tasks, flags.sleep_ms, callbacks.load(), stopwatch.seconds());
  });
}
