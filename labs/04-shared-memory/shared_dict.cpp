// shared_dict.cpp — the seed's Manager().dict() (lab 04).
//
// A SharedDict<int, int> lives in shared memory; child i sets dic[i] = 100+i
// and prints the values it sees. Observe: the second child sees the first
// one's entry, and the parent sees both. (Python's Manager does this with a
// server process and a socket; here the children write the memory directly.)
// See also: shared_array.cpp, python/shared_dict.py.
#include <fmt/core.h>
#include <fmt/ranges.h>

#include "conclab/cli.hpp"
#include "conclab/process.hpp"
#include "conclab/shm.hpp"

int main(int argc, char** argv) {
  CLI::App app{"Lab 04: children set keys of a shared dict; everyone sees them."};
  int processes = 2;
  app.add_option("--processes", processes, "how many children (each sets one key)")
      ->check(conclab::int_in_range(1, 100));

  return conclab::run_main(app, argc, argv, [&] {
    conclab::SharedDict<int, int> dic;

    auto foo = [&dic](int i) {
      dic.set(i, 100 + i);
      fmt::print("{}\n", dic.values());
    };
    for (int i = 0; i < processes; ++i) {
      conclab::Process p(foo, i);
      p.start();
      p.join();
    }
    fmt::print("parent sees {}\n", dic.values());
    fmt::print("model=shared-dict processes={} entries={} expected={}\n", processes, dic.size(), processes);
  });
}
