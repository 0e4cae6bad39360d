// zombies.cpp — what an unreaped child looks like, and reaping it (lab 03).
//
// With the raw calls this time: fork() a child that exits at once, wait until
// it has exited *without* reaping it (waitid with WNOWAIT), and look at it
// with ps: state Z, <defunct>. Then waitpid() reaps it and ps finds nothing.
// conclab::Process does this reaping in join() and in its destructor.
// See also: forked.cpp, python/zombies.py.
#include <fmt/core.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>

#include "conclab/cli.hpp"
#include "conclab/error.hpp"

// The one-letter state of `pid` from /proc (Z = zombie), or '-' when gone.
char state_of(pid_t pid) {
  std::ifstream stat(fmt::format("/proc/{}/stat", pid));
  std::string line;
  if (!std::getline(stat, line)) return '-';
  return line.at(line.rfind(')') + 2);  // the field after "(comm)"
}

void show(pid_t pid) {
  std::fflush(stdout);
  std::system(fmt::format("ps -o pid,ppid,stat,args -p {}", pid).c_str());
}

int main(int argc, char** argv) {
  CLI::App app{"Lab 03: make a zombie, look at it, reap it."};
  return conclab::run_main(app, argc, argv, [&] {
    std::fflush(stdout);
    pid_t pid = conclab::check(::fork(), "fork");
    if (pid == 0) ::_exit(7);  // the child leaves at once, with status 7

    siginfo_t info{};
    conclab::check(::waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOWAIT), "waitid");
    char before = state_of(pid);
    fmt::print("child {} has exited with status {} but is not reaped: state {}\n", pid, info.si_status, before);
    show(pid);

    int status = 0;
    conclab::check(::waitpid(pid, &status, 0), "waitpid");
    char after = state_of(pid);
    fmt::print("reaped with waitpid: exit status {}, state now {}\n", WEXITSTATUS(status), after);
    show(pid);
    fmt::print("model=zombies state_before={} state_after={} exit_status={}\n", before, after, WEXITSTATUS(status));
  });
}
