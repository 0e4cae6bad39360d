// Exercise 01/in_order — results as the workers finish, not as they started (~20 min).
//
// Task: each worker sleeps a different multiple of --sleep-ms and then has
// a result, so they finish in another order than they started (with 5
// workers: 0, 3, 1, 4, 2). main() joins the threads in the order it started
// them and prints each result after its join, so a result can wait behind a
// slower worker. Make each result appear as soon as its worker is done, in
// the order they finish, all in about the longest sleep. The lines must not
// mix, and nothing the threads share may race (ThreadSanitizer runs it).
//
//   scripts/grade 01/in_order          grade it
//   scripts/grade --hint 01/in_order   a hint
#include <fmt/core.h>

#include <chrono>
#include <thread>
#include <vector>

#include "conclab/cli.hpp"
#include "conclab/clock.hpp"
#include "conclab/threading.hpp"

// The work of worker `id`: it takes a while and gives a number.
int work(int id, std::chrono::milliseconds sleep) {
  std::this_thread::sleep_for(sleep);
  return id * id;
}

int main(int argc, char** argv) {
  CLI::App app{"Exercise 01/in_order: print each result as its worker finishes."};
  conclab::WorkerFlags flags{.tasks = 5, .sleep_ms = 100};
  conclab::add_worker_flags(app, flags, 100);

  return conclab::run_main(app, argc, argv, [&] {
    conclab::Stopwatch stopwatch;
    std::vector<int> results(static_cast<std::size_t>(flags.tasks));
    std::vector<conclab::Thread> threads;
    for (int i = 0; i < flags.tasks; ++i) {
      auto sleep = flags.sleep() * ((2 * i) % flags.tasks + 1);  // 5 workers: 1, 3, 5, 2, 4 sleeps
      threads.emplace_back([&results, i, sleep] { results[static_cast<std::size_t>(i)] = work(i, sleep); });
      threads.back().start();
    }
    // TODO: print each result when its worker finishes, not in this order.
    for (int i = 0; i < flags.tasks; ++i) {
      threads[static_cast<std::size_t>(i)].join();
      fmt::print("result {} = {} after {:.3f} s\n", i, results[static_cast<std::size_t>(i)], stopwatch.seconds());
    }
    fmt::print("elapsed {:.3f} s\n", stopwatch.seconds());
  });
}
