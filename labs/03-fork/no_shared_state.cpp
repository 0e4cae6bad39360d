// no_shared_state.cpp — the seed's li.append demo: processes share nothing (lab 03).
//
// Each child appends its number to the global list and prints it: every
// child sees a list with only its own number, because fork() gave it a copy.
// Observe the parent's list at the end: still empty.
// Contrast: threads (lab 02) share globals for free; lab 04 shares memory on purpose.
// See also: forked.cpp, python/no_shared_state.py (the seed's program).
#include <fmt/core.h>
#include <fmt/ranges.h>

#include <vector>

#include "conclab/cli.hpp"
#include "conclab/process.hpp"

std::vector<int> li;

void foo(int i) {
  li.push_back(i);
  fmt::print("say hi {}\n", li);
}

int main(int argc, char** argv) {
  CLI::App app{"Lab 03: children append to a global list; the parent's stays empty."};
  int processes = 10;
  app.add_option("--processes", processes, "how many processes")->check(conclab::int_in_range(1, 1000));

  return conclab::run_main(app, argc, argv, [&] {
    std::vector<conclab::Process> children;
    for (int i = 0; i < processes; ++i) {
      children.emplace_back(foo, i);
      children.back().start();
    }
    for (auto& p : children) p.join();
    fmt::print("ending {}\n", li);
    fmt::print("model=no-shared-state processes={} parent_list_size={} expected=0\n", processes, li.size());
  });
}
