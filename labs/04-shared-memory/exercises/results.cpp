// Exercise 04/results — results from N children, in a dict the parent reads (~20 min).
//
// Task: task i takes --sleep-ms and gives i*i; each task runs in a child
// process and stores its result, with the pid of the child that did it, in
// `results`. Two things are wrong. `results` is a std::map in the parent's
// memory, so every child fills a copy of its own and the parent prints every
// task as missing: make it a conclab::SharedDict<int, Result> (a struct has
// to be declared portable first: read conclab/portable.hpp). And the children
// run one after the other: start them all, then join them all, so that 6
// tasks take about as long as one. The grader checks each "task i = i*i by
// pid P" line (P a child, a different one per task) and the time of 6 tasks
// against the time of 1.
//
//   scripts/grade 04/results           grade it
//   scripts/grade --hint 04/results    a hint
#include <fmt/core.h>
#include <unistd.h>

#include <chrono>
#include <map>
#include <thread>
#include <vector>

#include "conclab/cli.hpp"
#include "conclab/clock.hpp"
#include "conclab/process.hpp"
#include "conclab/shm.hpp"

// What a child reports: its answer, and who computed it.
struct Result {
  long value;
  int pid;
};

long work(int i, std::chrono::milliseconds sleep) {
  std::this_thread::sleep_for(sleep);
  return static_cast<long>(i) * i;
}

int main(int argc, char** argv) {
  CLI::App app{"Exercise 04/results: children store their results in a dict the parent reads."};
  conclab::WorkerFlags flags{.tasks = 6, .sleep_ms = 150};
  conclab::add_worker_flags(app, flags, 64);

  return conclab::run_main(app, argc, argv, [&] {
    conclab::Stopwatch stopwatch;
    // TODO: a dict the children share (and a Result that may live in it).
    std::map<int, Result> results;

    auto child = [&results, &flags](int i) { results[i] = Result{work(i, flags.sleep()), ::getpid()}; };
    // TODO: the children at the same time.
    for (int i = 0; i < flags.tasks; ++i) {
      conclab::Process p(child, i);
      p.start();
      p.join();
    }

    int found = 0;
    for (int i = 0; i < flags.tasks; ++i) {
      if (auto it = results.find(i); it != results.end()) {
        fmt::print("task {} = {} by pid {}\n", i, it->second.value, it->second.pid);
        ++found;
      } else {
        fmt::print("task {} missing\n", i);
      }
    }
    fmt::print("model=shared-results tasks={} results={} parent_pid={} elapsed_s={:.3f}\n", flags.tasks, found,
               ::getpid(), stopwatch.seconds());
  });
}
