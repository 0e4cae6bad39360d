// shared_array.cpp — the seed's Array('i', [11, 22, 33, 44]) (lab 04).
//
// Unlike lab 03's global list, a SharedArray lives in memory that every
// forked child maps too. Child i writes 100+i and prints what it sees.
// Observe: child 1 already sees child 0's 100, and the parent sees both.
// See also: shared_dict.cpp, ../03-fork/no_shared_state.cpp, python/shared_array.py.
#include <fmt/core.h>
#include <fmt/ranges.h>

#include "conclab/cli.hpp"
#include "conclab/process.hpp"
#include "conclab/shm.hpp"

int main(int argc, char** argv) {
  CLI::App app{"Lab 04: children write into a shared array; everyone sees the writes."};
  int processes = 2;
  app.add_option("--processes", processes, "how many children (each writes one element)")
      ->check(conclab::int_in_range(1, 4));

  return conclab::run_main(app, argc, argv, [&] {
    conclab::SharedArray<int> temp{11, 22, 33, 44};

    auto foo = [&temp](int i) {
      temp[static_cast<size_t>(i)] = 100 + i;
      for (int item : temp) fmt::print("{} -----> {}\n", i, item);
    };
    for (int i = 0; i < processes; ++i) {
      conclab::Process p(foo, i);
      p.start();
      p.join();  // one at a time, as in the seed
    }
    auto seen = temp.snapshot();
    fmt::print("parent sees {}\n", seen);
    fmt::print("model=shared-array processes={} parent_sees={}\n", processes, fmt::join(seen, ","));
  });
}
