// forked.cpp — the seed's Process(target=foo) x 10 (lab 03).
//
// Each conclab::Process forks a child that runs foo(i) and exits. Observe
// that the "say hi" lines come in any order (ten processes run at once) and
// that every child reports exit code 0 once joined. With --sleep-ms T each
// child also sleeps T ms, like lab 01's threaded workers: compare the two.
// See also: no_shared_state.cpp, zombies.cpp, python/forked.py (the seed's program).
#include <fmt/core.h>
#include <unistd.h>

#include <chrono>
#include <thread>
#include <vector>

#include "conclab/cli.hpp"
#include "conclab/clock.hpp"
#include "conclab/process.hpp"

void foo(int i, std::chrono::milliseconds sleep) {
  fmt::print("say hi {} (pid {})\n", i, ::getpid());
  std::this_thread::sleep_for(sleep);  // 0 by default: the seed's foo does not sleep
}

int main(int argc, char** argv) {
  CLI::App app{"Lab 03: start ten processes, each saying hi."};
  int processes = 10;
  int sleep_ms = 0;
  app.add_option("--processes", processes, "how many processes")->check(conclab::int_in_range(1, 1000));
  app.add_option("--sleep-ms", sleep_ms, "how long each child sleeps after saying hi, in milliseconds")
      ->check(conclab::int_in_range(0, conclab::kMaxSleepMs))
      ->capture_default_str();

  return conclab::run_main(app, argc, argv, [&] {
    conclab::Stopwatch stopwatch;
    std::vector<conclab::Process> children;
    for (int i = 0; i < processes; ++i) {
      children.emplace_back(foo, i, std::chrono::milliseconds(sleep_ms));
      children.back().start();
    }
    int ok = 0;
    for (auto& p : children) {
      p.join();  // reaps the child: no zombie is left
      ok += p.exitcode() == 0;
    }
    fmt::print("model=forked processes={} sleep_ms={} exit_ok={} expected={} elapsed_s={:.3f}\n", processes,
               sleep_ms, ok, processes, stopwatch.seconds());
  });
}
