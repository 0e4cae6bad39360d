// Exercise 04/no_leak — shared memory by hand, and nothing left behind (~25 min).
//
// Task: this is the seed's Array done by hand with POSIX shared memory. The
// parent creates a named segment (shm_open, ftruncate, mmap), each child
// opens it by its name and writes 100+i into slot i, and the parent removes
// the name (shm_unlink) at its very end. But a program does not always reach
// its end: with --fail error it throws after the children (exit 1), with
// --fail kill it is killed there by SIGKILL, and both times the segment stays
// in /dev/shm until the machine reboots. Make sure that no run, not even a
// killed one, leaves the segment behind, as conclab::SharedArray does (the
// lab README says how), while the parent still sees every child's write. The
// grader runs both failures with 4 children and looks in /dev/shm.
//
//   scripts/grade 04/no_leak           grade it
//   scripts/grade --hint 04/no_leak    a hint
#include <fcntl.h>
#include <fmt/core.h>
#include <fmt/ranges.h>
#include <sys/mman.h>
#include <unistd.h>

#include <csignal>
#include <stdexcept>
#include <string>
#include <vector>

#include "conclab/cli.hpp"
#include "conclab/error.hpp"
#include "conclab/fd.hpp"
#include "conclab/process.hpp"

// The segment's name, unique to this process: /dev/shm/conclab-ex04-<pid>.
std::string segment_name() { return fmt::format("/conclab-ex04-{}", ::getpid()); }

// Maps `count` ints of the segment open on `fd`: shared with every process that maps it.
int* map_ints(int fd, std::size_t count) {
  void* p = ::mmap(nullptr, count * sizeof(int), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) conclab::throw_errno("mmap");
  return static_cast<int*>(p);
}

int main(int argc, char** argv) {
  CLI::App app{"Exercise 04/no_leak: a shared-memory segment by hand that no ending leaves behind."};
  int processes = 4;
  std::string fail = "none";
  app.add_option("--processes", processes, "how many children (each writes one slot)")
      ->check(conclab::int_in_range(1, 64));
  app.add_option("--fail", fail, "how the parent ends after the children: none, error (exit 1), kill (SIGKILL)")
      ->check(CLI::IsMember({"none", "error", "kill"}));

  return conclab::run_main(app, argc, argv, [&] {
    const auto n = static_cast<std::size_t>(processes);
    const std::string name = segment_name();
    conclab::unique_fd fd(conclab::check(::shm_open(name.c_str(), O_CREAT | O_EXCL | O_RDWR, 0600), "shm_open"));
    conclab::check(::ftruncate(fd.get(), static_cast<off_t>(n * sizeof(int))), "ftruncate");  // zeros
    int* slots = map_ints(fd.get(), n);

    // TODO: leave nothing in /dev/shm, however this program ends.
    auto child = [&name, n](int i) {
      conclab::unique_fd own(conclab::check(::shm_open(name.c_str(), O_RDWR, 0), "shm_open"));
      int* mine = map_ints(own.get(), n);
      mine[i] = 100 + i;
    };
    std::vector<conclab::Process> children;
    for (int i = 0; i < processes; ++i) {
      children.emplace_back(child, i);
      children.back().start();
    }
    for (int i = 0; i < processes; ++i) {
      auto& p = children[static_cast<std::size_t>(i)];
      p.join();
      if (p.exitcode() != 0)
        throw std::runtime_error(
            fmt::format("child {} failed: {}", i, conclab::Process::describe_status(*p.exitcode())));
    }
    std::vector<int> seen(slots, slots + n);
    fmt::print("parent sees {}\n", seen);

    if (fail == "error") throw std::runtime_error("failing on purpose (--fail error), after the children");
    if (fail == "kill") std::raise(SIGKILL);  // as kill -9 or the OOM killer would
    ::munmap(slots, n * sizeof(int));
    conclab::check(::shm_unlink(name.c_str()), "shm_unlink");
    fmt::print("model=shm-by-hand processes={} parent_sees={}\n", processes, fmt::join(seen, ","));
  });
}
