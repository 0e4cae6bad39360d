#include "conclab/process.hpp"

#include <fmt/core.h>
#include <poll.h>
#include <sched.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <utility>
#include <vector>

#include "conclab/clock.hpp"

namespace conclab {

namespace detail {
std::pair<int, int> stop_pipe() noexcept;  // signals.cpp
void renew_stop_pipe_in_child() noexcept;  // signals.cpp
}  // namespace detail

namespace {
std::string next_default_name() {
  static std::atomic<unsigned> counter{0};
  return fmt::format("Process-{}", ++counter);
}
}  // namespace

int exitcode_from_status(int status) {
  if (WIFSIGNALED(status)) return -WTERMSIG(status);
  return WEXITSTATUS(status);
}

std::string Process::describe_status(int exitcode) {
  if (exitcode < 0) return fmt::format("signal {} ({})", -exitcode, ::strsignal(-exitcode));
  return fmt::format("exit status {}", exitcode);
}

Process::Process(std::function<int()> target) : target_(std::move(target)), name_(next_default_name()) {
  if (!target_) throw UsageError("Process needs a target");
}

Process::Process(Process&& other) noexcept
    : target_(std::move(other.target_)),
      name_(std::move(other.name_)),
      daemon_(other.daemon_),
      pass_fds_(std::move(other.pass_fds_)),
      pid_(std::exchange(other.pid_, -1)),
      pidfd_(std::move(other.pidfd_)),
      exitcode_(other.exitcode_) {}

Process& Process::operator=(Process&& other) noexcept {
  if (this != &other) {
    finish();
    target_ = std::move(other.target_);
    name_ = std::move(other.name_);
    daemon_ = other.daemon_;
    pass_fds_ = std::move(other.pass_fds_);
    pid_ = std::exchange(other.pid_, -1);
    pidfd_ = std::move(other.pidfd_);
    exitcode_ = other.exitcode_;
  }
  return *this;
}

Process::~Process() { finish(); }

// A started child that has not been reaped is reaped here: killed first when
// it is a daemon, waited for otherwise. Either way no zombie is left.
void Process::finish() noexcept {
  if (pid_ < 0 || exitcode_) return;
  if (daemon_) ::kill(pid_, SIGKILL);
  try {
    reap(true);
  } catch (...) {
  }
}

namespace {

// Closes every descriptor from 3 up but those in `keep` (sorted); safe in a
// child of a threaded parent (fd.hpp).
void close_all_but(const std::vector<int>& keep) noexcept {
  unsigned next = 3;
  for (int fd : keep) {
    const auto u = static_cast<unsigned>(fd);
    if (u < next) continue;
    if (u > next) close_descriptors(next, u - 1);
    next = u + 1;
  }
  close_descriptors(next);
}

// Flushes `f` unless its lock is held: in a child of a threaded parent it may
// be held by a thread that does not exist here, and would never be released.
void flush_if_free(FILE* f) noexcept {
  if (::ftrylockfile(f) != 0) return;
  std::fflush(f);
  ::funlockfile(f);
}

void report_if_free(const char* name, const char* what) noexcept {
  if (::ftrylockfile(stderr) != 0) return;
  std::fprintf(stderr, "Process %s: %s\n", name, what);
  ::funlockfile(stderr);
}

}  // namespace

void Process::start() {
  if (pid_ >= 0) throw UsageError(fmt::format("{}: cannot start a process twice", name_));
  // What the child keeps, decided before fork (the child must not allocate):
  // the descriptors it was given, and the numbers of the stop pipe of
  // stop_on_signals(), whose inherited handler would otherwise write into
  // whatever file took a closed number (the child makes a pipe of its own there).
  std::vector<int> keep = pass_fds_;
  if (const auto [read_end, write_end] = detail::stop_pipe(); read_end >= 0) {
    keep.push_back(read_end);
    keep.push_back(write_end);
    std::sort(keep.begin(), keep.end());
  }
  // Flush what the parent buffered, or the child would print it again.
  std::fflush(nullptr);
  pid_t pid = check(::fork(), "fork");
  if (pid == 0) {
    // The child: drop every descriptor it was not given, run the target,
    // flush, and leave with _exit so that no destructor or atexit handler of
    // the parent's copy runs twice.
    close_all_but(keep);
    detail::renew_stop_pipe_in_child();
    int code = 1;
    try {
      code = target_();
    } catch (const std::exception& e) {
      report_if_free(name_.c_str(), e.what());
    } catch (...) {
      report_if_free(name_.c_str(), "unknown exception");
    }
    flush_if_free(stdout);
    flush_if_free(stderr);
    ::_exit(code);
  }
  pid_ = pid;
}

bool Process::reap(bool block) {
  if (exitcode_) return true;
  int status = 0;
  pid_t r;
  if (block) {
    // A short child is often done within microseconds: look for a while
    // before sleeping in waitpid (the spin window, clock.hpp).
    const auto until = std::chrono::steady_clock::now() + spin_window();
    while ((r = ::waitpid(pid_, &status, WNOHANG)) == 0 && std::chrono::steady_clock::now() < until) ::sched_yield();
    if (r > 0) return record(status);
  }
  do {
    r = ::waitpid(pid_, &status, block ? 0 : WNOHANG);
  } while (r == -1 && errno == EINTR);
  if (r == -1) throw_errno("waitpid");
  if (r == 0) return false;
  return record(status);
}

bool Process::record(int status) {
  exitcode_ = exitcode_from_status(status);
  pidfd_.reset();
  return true;
}

void Process::join() {
  if (pid_ < 0) throw UsageError(fmt::format("{}: can only join a started process", name_));
  reap(true);
}

bool Process::join_for(std::chrono::nanoseconds timeout) {
  if (pid_ < 0) throw UsageError(fmt::format("{}: can only join a started process", name_));
  const auto until = detail::deadline_after(timeout);
  if (!until) return reap(true);  // no deadline (hours::max()): as join()
  const auto deadline = *until;
  if (!pidfd_ && !exitcode_) {
    // Opened only here: a pidfd becomes readable when the child ends, which
    // is what poll() can wait on with a timeout.
    int fd = static_cast<int>(::syscall(SYS_pidfd_open, pid_, 0));
    if (fd >= 0) pidfd_.reset(fd);  // without pidfd (old kernels) the loop below polls waitpid
  }
  while (!reap(false)) {
    auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return false;
    if (pidfd_) {
      pollfd p{pidfd_.get(), POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(std::min<long long>(left.count(), 1 << 30))) == -1 && errno != EINTR)
        throw_errno("poll");
    } else {
      ::usleep(1000);
    }
  }
  return true;
}

bool Process::is_alive() { return pid_ >= 0 && !reap(false); }

std::optional<pid_t> Process::pid() const {
  if (pid_ < 0) return std::nullopt;
  return pid_;
}

void Process::send(int signal) {
  if (pid_ < 0) throw UsageError(fmt::format("{}: process not started", name_));
  if (exitcode_) return;  // reaped: the pid may belong to someone else now
  check(::kill(pid_, signal), "kill");
}

void Process::terminate() { send(SIGTERM); }
void Process::kill() { send(SIGKILL); }

Process& Process::set_name(std::string name) {
  name_ = std::move(name);
  return *this;
}

Process& Process::set_pass_fds(std::vector<int> fds) {
  if (pid_ >= 0) throw UsageError(fmt::format("{}: cannot change pass_fds of a started process", name_));
  for (int fd : fds)
    if (fd < 0) throw UsageError(fmt::format("{}: pass_fds: {} is not a descriptor", name_, fd));
  std::sort(fds.begin(), fds.end());
  pass_fds_ = std::move(fds);
  return *this;
}

Process& Process::set_daemon(bool daemon) {
  if (pid_ >= 0) throw UsageError(fmt::format("{}: cannot set daemon status of a started process", name_));
  daemon_ = daemon;
  return *this;
}

}  // namespace conclab
