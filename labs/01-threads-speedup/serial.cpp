// serial.cpp — five workers, one after the other (lab 01, the "before").
//
// Each worker prints "worker" and sleeps one second. Run in a row they take
// tasks x sleep: about 5 s. Observe the elapsed time, then run threaded.cpp,
// which differs only in how the workers are started.
// See also: threaded.cpp, python/serial.py (the seed's program).
#include <fmt/core.h>

#include <chrono>
#include <thread>

#include "conclab/cli.hpp"
#include "conclab/clock.hpp"

void worker(std::chrono::milliseconds sleep) {
  fmt::print("worker\n");
  std::this_thread::sleep_for(sleep);
}

int main(int argc, char** argv) {
  CLI::App app{"Lab 01: run the workers one after the other."};
  conclab::WorkerFlags flags{.tasks = 5, .sleep_ms = 1000};
  conclab::add_worker_flags(app, flags);

  return conclab::run_main(app, argc, argv, [&] {
    conclab::Stopwatch stopwatch;
    for (int i = 0; i < flags.tasks; ++i) worker(flags.sleep());
    double elapsed = stopwatch.seconds();

    double expected = flags.tasks * flags.sleep_ms / 1000.0;  // tasks x sleep
    fmt::print("elapsed {:.3f} s (expected about {:.3f} s: {} tasks x {} ms, in a row)\n", elapsed, expected,
               flags.tasks, flags.sleep_ms);
    fmt::print("model=serial tasks={} sleep_ms={} elapsed_s={:.3f}\n", flags.tasks, flags.sleep_ms, elapsed);
  });
}
