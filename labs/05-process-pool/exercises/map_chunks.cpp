// Exercise 05/map_chunks — map 1,000 uneven items at 80% of ideal efficiency (~25 min).
//
// Task: work() sleeps 0.2 ms per item, except for the last 50 items, which
// take 8 ms each (think of a list of files sorted by size). pool.map() with
// its default chunksize (as CPython's: about four chunks per worker) cuts
// the items into contiguous chunks and gives each chunk to one worker: here
// the last chunk holds every expensive item, so one worker does most of the
// work while the others wait. Make the map reach 80% of ideal efficiency
// (ideal time / map time; the ideal: all the sleeps divided by --processes)
// for any pool size, with the results still in item order. The grader
// compares map_s= with the same sleeps done one after the other, divided by
// the pool size, measured in the same check, with 4 and with 3 workers.
//
//   scripts/grade 05/map_chunks          grade it
//   scripts/grade --hint 05/map_chunks   a hint
#include <fmt/core.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <thread>
#include <vector>

#include "conclab/cli.hpp"
#include "conclab/clock.hpp"
#include "conclab/pool.hpp"

constexpr int kItems = 1000, kDear = 50;  // the last kDear items are the expensive ones

// Runs in a worker process.
int work(int item) {
  std::this_thread::sleep_for(std::chrono::microseconds(item >= kItems - kDear ? 8000 : 200));
  return 2 * item + 1;
}

int main(int argc, char** argv) {
  CLI::App app{"Exercise 05/map_chunks: pool.map over 1,000 items of uneven cost."};
  int processes = 4;
  app.add_option("--processes", processes, "pool size")->check(conclab::int_in_range(1, 32));

  return conclab::run_main(app, argc, argv, [&] {
    std::vector<int> items(kItems);
    for (int i = 0; i < kItems; ++i) items[static_cast<std::size_t>(i)] = i;
    conclab::Pool pool(processes);

    conclab::Stopwatch stopwatch;
    const std::size_t chunksize = 0;  // TODO: 0 is the default; find one that keeps every worker busy
    std::vector<int> results = pool.map(work, items, chunksize);
    const double map_s = stopwatch.seconds();

    std::uint64_t check = 0;  // depends on the order of the results
    for (std::size_t i = 0; i < results.size(); ++i) check = check * 31 + static_cast<std::uint64_t>(results[i]);
    pool.close();
    pool.join();
    fmt::print("model=pool-map items={} processes={} chunksize={} results={} check={} map_s={:.3f}\n", kItems,
               processes, chunksize, results.size(), check, map_s);
  });
}
