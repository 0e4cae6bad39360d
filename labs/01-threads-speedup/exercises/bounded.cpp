// Exercise 01/bounded — many workers, at most K threads at a time (~30 min).
//
// Task: a thread per worker is fine for five workers, not for a hundred
// thousand. Run --tasks workers with at most --max-threads of them running
// at any moment, and still in the ideal time: 12 workers of 150 ms on 4
// threads should take 3 x 150 ms. Today the program runs them one after the
// other. Start --max-threads conclab::Threads that each take the next worker
// number from a shared counter until none is left (a counter the threads
// share must be safe to share: ThreadSanitizer runs it). Starting threads in
// batches of K and joining each batch also keeps the bound; think about what
// it costs when one worker of a batch is slow.
//
//   scripts/grade 01/bounded           grade it
//   scripts/grade --hint 01/bounded    a hint
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
  CLI::App app{"Exercise 01/bounded: many workers on at most K threads."};
  conclab::WorkerFlags flags{.tasks = 12, .sleep_ms = 150};
  conclab::add_worker_flags(app, flags);
  int max_threads = 4;
  app.add_option("--max-threads", max_threads, "threads at most (K)")
      ->check(conclab::int_in_range(1, conclab::kMaxThreads));

  return conclab::run_main(app, argc, argv, [&] {
    conclab::Stopwatch stopwatch;
    // TODO: run the workers on at most max_threads threads at a time.
    for (int i = 0; i < flags.tasks; ++i) worker(i, flags.sleep());
    fmt::print("elapsed {:.3f} s on at most {} threads\n", stopwatch.seconds(), max_threads);
  });
}
