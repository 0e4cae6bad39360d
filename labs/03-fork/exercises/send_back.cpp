// Exercise 03/send_back — bring the children's numbers back to the parent (~25 min).
//
// Task: as in the seed's li.append demo (no_shared_state.cpp), each child
// appends to the global list li: here --draws random numbers, and it prints
// how many and their sum. fork() gave each child a copy of li, so the
// parent's list stays empty. Make the parent's li end up with every number
// every child drew: send them back through a pipe (conclab::Process closes
// every descriptor in the child except those given with set_pass_fds), or
// keep them in memory the children share (lab 04). The drawing stays in the
// children. The grader checks the parent's count and total against the
// children's lines, with a few numbers and with more than a pipe holds
// (4 children x 20,000 numbers), and that no child is left behind.
//
//   scripts/grade 03/send_back         grade it
//   scripts/grade --hint 03/send_back  a hint
#include <fmt/core.h>

#include <numeric>
#include <random>
#include <vector>

#include "conclab/cli.hpp"
#include "conclab/process.hpp"

std::vector<int> li;

// A number from 1 to 1000, different in every child (each seeds its own generator).
int draw() {
  static std::mt19937 generator{std::random_device{}()};
  return std::uniform_int_distribution<int>(1, 1000)(generator);
}

void foo(int i, int draws) {
  for (int k = 0; k < draws; ++k) li.push_back(draw());
  fmt::print("child {} drew {} numbers, sum {}\n", i, draws, std::accumulate(li.begin(), li.end(), 0LL));
  // TODO: get li's numbers to the parent.
}

int main(int argc, char** argv) {
  CLI::App app{"Exercise 03/send_back: the children's numbers, in the parent's list."};
  int processes = 10;
  int draws = 1;
  app.add_option("--processes", processes, "how many children")->check(conclab::int_in_range(1, 100));
  app.add_option("--draws", draws, "how many numbers each child draws")
      ->check(conclab::int_in_range(1, 100'000))
      ->capture_default_str();

  return conclab::run_main(app, argc, argv, [&] {
    std::vector<conclab::Process> children;
    for (int i = 0; i < processes; ++i) {
      children.emplace_back(foo, i, draws);
      children.back().start();
    }
    // TODO: collect what the children send into li.
    for (auto& p : children) p.join();
    fmt::print("parent has {} numbers, sum {}\n", li.size(), std::accumulate(li.begin(), li.end(), 0LL));
    fmt::print("model=send-back processes={} draws={} parent_list_size={} expected={}\n", processes, draws, li.size(),
               processes * draws);
  });
}
