// Exercise 03/reap — reap every child (warm-up, ~10 min).
//
// Task: this program forks --processes children with the raw fork(); child i
// says hi and leaves with _exit(i). The parent then goes on with other work
// for --linger-ms and ends, but it never waits for its children: each one is
// a zombie from its end until the parent is gone (zombies.cpp shows one).
// Before the other work, wait for every child with waitpid(), print
// "reaped child i (pid P): exit status S" from the status it gives, and count
// it in the summary's reaped=. The grader checks those lines against the
// children's, watches the process table while the parent lingers (no zombie
// may be there), and fails a run that leaves a child behind.
//
//   scripts/grade 03/reap              grade it
//   scripts/grade --hint 03/reap       a hint
#include <fmt/core.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <thread>
#include <vector>

#include "conclab/cli.hpp"
#include "conclab/error.hpp"

int main(int argc, char** argv) {
  CLI::App app{"Exercise 03/reap: fork children and reap every one."};
  int processes = 5;
  int linger_ms = 300;
  app.add_option("--processes", processes, "how many children")->check(conclab::int_in_range(1, 100));
  app.add_option("--linger-ms", linger_ms, "how long the parent goes on working after forking, in milliseconds")
      ->check(conclab::int_in_range(0, 10'000))
      ->capture_default_str();

  return conclab::run_main(app, argc, argv, [&] {
    std::vector<pid_t> pids;
    for (int i = 0; i < processes; ++i) {
      std::fflush(stdout);  // or the child prints what the parent has buffered too
      pid_t pid = conclab::check(::fork(), "fork");
      if (pid == 0) {
        fmt::print("child {} (pid {}) says hi\n", i, ::getpid());
        std::fflush(stdout);  // _exit() does not flush
        ::_exit(i);           // each child leaves with a status of its own
      }
      pids.push_back(pid);
    }

    int reaped = 0;
    // TODO: wait for each child with waitpid(), print how it ended, count it.

    std::this_thread::sleep_for(std::chrono::milliseconds(linger_ms));  // the parent's other work
    fmt::print("model=reap processes={} reaped={} expected={}\n", processes, reaped, processes);
  });
}
