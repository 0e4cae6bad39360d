// Exercise 01/threaded — run each worker in its own thread (warm-up, ~15 min).
//
// Task: this program runs --tasks workers one after the other, as serial.cpp
// does, so five workers of 200 ms take a second. Change main() so that each
// worker runs in its own conclab::Thread: start them all, then join them
// all, and only then print the elapsed time. Done right, five workers of
// 200 ms take about 200 ms, and every "start" line comes before the first
// "done" line. The grader also runs it under ThreadSanitizer.
//
//   scripts/grade 01/threaded          grade it
//   scripts/grade --hint 01/threaded   a hint
#include <fmt/core.h>

#include <chrono>
#include <thread>
#include <vector>

#include "conclab/cli.hpp"
#include "conclab/clock.hpp"
#include "conclab/threading.hpp"

void worker(int id, std::chrono::milliseconds sleep) {
  fmt::print("worker {} start\n", id);
  std::this_thread::sleep_for(sleep);
  fmt::print("worker {} done\n", id);
}

int main(int argc, char** argv) {
  CLI::App app{"Exercise 01/threaded: each worker in its own thread."};
  conclab::WorkerFlags flags{.tasks = 5, .sleep_ms = 200};
  conclab::add_worker_flags(app, flags, conclab::kMaxThreads);

  return conclab::run_main(app, argc, argv, [&] {
    conclab::Stopwatch stopwatch;
    // TODO: start one conclab::Thread per worker instead, then join them all.
    for (int i = 0; i < flags.tasks; ++i) worker(i, flags.sleep());
    fmt::print("elapsed {:.3f} s\n", stopwatch.seconds());
  });
}
