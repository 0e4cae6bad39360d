// Exercise 05/callbacks — report the tasks that fail, as they fail (~15 min).
//
// Task: the seed's program: --tasks apply_async calls with the callback Bar,
// "end", then close() and join(). But every --bad-every-th task throws, and
// a task that throws never calls Bar: nobody calls get() on its result, so
// its error vanishes without a word (in CPython too) and the summary says
// failed=0. Give each apply_async an error_callback as well (its fourth
// argument; Python's error_callback=) that prints "task <i> failed: <what>"
// and counts the failure. Like Bar, it runs in the pool's result thread as
// soon as the task ends. The grader checks that each failed task is reported
// with its number and error, before tasks that end later, and that the
// summary's ok + failed adds up to --tasks.
//
//   scripts/grade 05/callbacks          grade it
//   scripts/grade --hint 05/callbacks   a hint
#include <fmt/core.h>

#include <atomic>
#include <chrono>
#include <stdexcept>
#include <thread>
#include <tuple>

#include "conclab/cli.hpp"
#include "conclab/clock.hpp"
#include "conclab/pool.hpp"

// Runs in a worker process: the seed's Foo, except that some items are bad.
int Foo(int i, int sleep_ms, int bad_every) {
  std::this_thread::sleep_for(std::chrono::milliseconds(sleep_ms));
  if (i % bad_every == bad_every - 1) throw std::invalid_argument(fmt::format("bad item {}", i));
  return i + 100;
}

std::atomic<int> ok{0}, failed{0};  // updated in the pool's result thread

void Bar(const int& arg) {
  fmt::print("result {}\n", arg);
  ++ok;
}

int main(int argc, char** argv) {
  CLI::App app{"Exercise 05/callbacks: callback and error_callback of apply_async."};
  int processes = 5, bad_every = 4;
  conclab::WorkerFlags flags{.tasks = 10, .sleep_ms = 200};
  app.add_option("--processes", processes, "pool size")->check(conclab::int_in_range(1, 100));
  conclab::add_worker_flags(app, flags);
  app.add_option("--bad-every", bad_every, "task i fails when i % N == N - 1")->check(conclab::int_in_range(1, 1000));

  return conclab::run_main(app, argc, argv, [&] {
    conclab::Stopwatch stopwatch;
    conclab::Pool pool(processes);
    for (int i = 0; i < flags.tasks; ++i) {
      // TODO: an error_callback too, printing "task <i> failed: <e.what()>" and counting it in `failed`.
      pool.apply_async(Foo, std::tuple{i, flags.sleep_ms, bad_every}, Bar);
    }
    fmt::print("end\n");
    pool.close();
    pool.join();
    fmt::print("model=pool-callbacks processes={} tasks={} ok={} failed={} elapsed_s={:.3f}\n", processes, flags.tasks,
               ok.load(), failed.load(), stopwatch.seconds());
  });
}
