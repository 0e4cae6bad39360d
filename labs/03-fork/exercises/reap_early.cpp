// Exercise 03/reap_early — reap each child as soon as it ends (~30 min).
//
// Task: this parent works like a forking server (socketserver's ForkingMixIn,
// lab 12): every --every-ms it forks a child to handle one request
// (--child-ms of work), and after the last request it stays up --idle-ms
// before it shuts down. It reaps its children only when it shuts down, so
// each one is a zombie from its end until then; a server that runs for days
// fills the process table. Reap every child within moments of its end, both
// while the parent forks and while it idles, count each one in reaped=, and
// keep the children running at once. The grader watches the process table
// while it runs: no child may stay a zombie for more than 150 ms, at least
// two children must be seen running at once, and none may be left behind.
//
//   scripts/grade 03/reap_early        grade it
//   scripts/grade --hint 03/reap_early a hint
#include <fmt/core.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <thread>

#include "conclab/cli.hpp"
#include "conclab/error.hpp"

using std::chrono::milliseconds;

int main(int argc, char** argv) {
  CLI::App app{"Exercise 03/reap_early: a forking parent that reaps its children as they end."};
  int children = 20;
  int every_ms = 30;
  int child_ms = 70;
  int idle_ms = 300;
  app.add_option("--children", children, "how many requests (one child each)")
      ->check(conclab::int_in_range(1, 100))
      ->capture_default_str();
  app.add_option("--every-ms", every_ms, "time between two requests, in milliseconds")
      ->check(conclab::int_in_range(0, 10'000))
      ->capture_default_str();
  app.add_option("--child-ms", child_ms, "how long a child works on its request, in milliseconds")
      ->check(conclab::int_in_range(0, 10'000))
      ->capture_default_str();
  app.add_option("--idle-ms", idle_ms, "how long the parent stays up after the last request, in milliseconds")
      ->check(conclab::int_in_range(0, 10'000))
      ->capture_default_str();

  return conclab::run_main(app, argc, argv, [&] {
    int reaped = 0;
    // TODO: reap each child as soon as it ends, and count it.
    for (int k = 0; k < children; ++k) {
      std::fflush(stdout);
      pid_t pid = conclab::check(::fork(), "fork");
      if (pid == 0) {
        std::this_thread::sleep_for(milliseconds(child_ms));  // handle request k
        ::_exit(0);
      }
      fmt::print("request {}: child {}\n", k, pid);
      std::this_thread::sleep_for(milliseconds(every_ms));  // wait for the next request
    }
    std::this_thread::sleep_for(milliseconds(idle_ms));  // no more requests for a while

    // Shutting down: wait for the children that are left.
    while (::wait(nullptr) > 0) ++reaped;
    fmt::print("model=reap-early children={} reaped={} expected={}\n", children, reaped, children);
  });
}
