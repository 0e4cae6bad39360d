// Exercise 05/initializer — give each worker its settings (warm-up, ~15 min).
//
// Task: main() stores --scale in the global `scale` before it makes the pool,
// and lookup() multiplies by it, yet every result comes out as if --scale
// were 1: a worker is a fresh copy of the program (forked from the pool's
// fork server), so it sees the globals as the program starts, never what
// main() changed since. Without changing lookup(), give the pool an
// initializer: set_scale(int), run once in each new worker with --scale as
// its argument (Python: Pool(n, initializer=set_scale, initargs=(scale,))),
// which sets the global there and prints "worker <pid> ready: scale=<s>".
// The grader checks the results with --scale 7, and that each worker ran the
// initializer exactly once.
//
//   scripts/grade 05/initializer          grade it
//   scripts/grade --hint 05/initializer   a hint
#include <fmt/core.h>
#include <unistd.h>

#include "conclab/cli.hpp"
#include "conclab/pool.hpp"

int scale = 1;  // each process has its own copy

// Runs in a worker process.
int lookup(int i) { return i * scale; }

// TODO: void set_scale(int s): set `scale` and print "worker <pid> ready: scale=<s>".

int main(int argc, char** argv) {
  CLI::App app{"Exercise 05/initializer: set each worker up with an initializer."};
  int processes = 3, tasks = 12;
  app.add_option("--processes", processes, "pool size")->check(conclab::int_in_range(1, 16));
  app.add_option("--tasks", tasks, "how many tasks")->check(conclab::int_in_range(1, 1000));
  app.add_option("--scale", scale, "what lookup() multiplies by")->check(conclab::int_in_range(1, 1000));

  return conclab::run_main(app, argc, argv, [&] {
    conclab::Pool pool(processes);  // TODO: with the initializer set_scale and its argument
    long sum = 0;
    for (int i = 0; i < tasks; ++i) {
      int v = pool.apply(lookup, i);
      fmt::print("task {}: {}\n", i, v);
      sum += v;
    }
    pool.close();
    pool.join();
    fmt::print("model=pool-initializer processes={} tasks={} scale={} sum={}\n", processes, tasks, scale, sum);
  });
}
