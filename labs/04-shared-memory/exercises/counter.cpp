// Exercise 04/counter — a counter every child adds to (~15 min).
//
// Task: --processes children start adding at the same moment, each adding 1
// to `counter` --increments times, but `counter` is a plain variable: each
// child adds to its own copy (lab 03), and the parent still sees 0. Put the
// counter in shared memory (a conclab::SharedArray<long> of one element) and
// make every addition count, although the children add at the same time: 4
// children of 100,000 increments must give counter=400000, in every run. Keep
// the children running at once. The grader reads the summary line, of one
// run and then of five runs of 4 children adding 2,000,000 times each.
//
//   scripts/grade 04/counter           grade it
//   scripts/grade --hint 04/counter    a hint
#include <fmt/core.h>

#include <chrono>
#include <thread>
#include <vector>

#include "conclab/cli.hpp"
#include "conclab/process.hpp"
#include "conclab/shm.hpp"

int main(int argc, char** argv) {
  CLI::App app{"Exercise 04/counter: children add to one counter that the parent reads."};
  int processes = 4;
  int increments = 100'000;
  app.add_option("--processes", processes, "how many children")->check(conclab::int_in_range(1, 16));
  app.add_option("--increments", increments, "how many times each child adds 1")
      ->check(conclab::int_in_range(1, conclab::kMaxIncrements));

  return conclab::run_main(app, argc, argv, [&] {
    // TODO: a counter the children share, and exact additions to it.
    long counter = 0;

    // Every child starts adding at the same moment, 50 ms from now
    // (steady_clock is one clock for every process of the machine).
    const auto go = std::chrono::steady_clock::now() + std::chrono::milliseconds(50);
    auto child = [&counter, increments, go](int i) {
      std::this_thread::sleep_until(go);
      for (int k = 0; k < increments; ++k) counter += 1;
      fmt::print("child {} added {}\n", i, increments);
    };
    std::vector<conclab::Process> children;
    for (int i = 0; i < processes; ++i) {
      children.emplace_back(child, i);
      children.back().start();
    }
    for (auto& p : children) p.join();
    fmt::print("model=shared-counter processes={} increments={} counter={} expected={}\n", processes, increments,
               counter, static_cast<long>(processes) * increments);
  });
}
