#include "conclab/process.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <csignal>
#include <limits>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <thread>

#include "conclab/fd.hpp"

using namespace std::chrono_literals;
using conclab::Process;
using conclab::UsageError;

namespace {
// True when `pid` is no child of ours any more (reaped): waitpid says ECHILD.
bool reaped(pid_t pid) { return ::waitpid(pid, nullptr, WNOHANG) == -1 && errno == ECHILD; }

int global_value = 1;
}  // namespace

TEST(Process, RunsTheTargetInAChildWithItsArguments) {
  std::array<int, 2> fds{};
  ASSERT_EQ(::pipe(fds.data()), 0);
  conclab::unique_fd r(fds[0]), w(fds[1]);
  // The child reports through its exit code: an ASSERT there would be lost.
  Process p([&](int a, int b) { return ::write(w.get(), std::to_string(a + b).c_str(), 2) == 2 ? 0 : 7; }, 40, 2);
  p.set_pass_fds({w.get()});
  p.start();
  p.join();
  EXPECT_EQ(p.exitcode(), 0);
  char buf[3] = {};
  ASSERT_EQ(::read(r.get(), buf, 2), 2);
  EXPECT_STREQ(buf, "42");
  EXPECT_NE(p.pid().value(), ::getpid());
}

// Issue 6: a child closes every descriptor it was not given (close_range), so
// a listening socket or another pool's channel never leaks into it.
TEST(Process, ChildKeepsOnlyTheDescriptorsItIsGiven) {
  conclab::unique_fd stray(::open("/dev/null", O_RDONLY));  // no O_CLOEXEC: fork alone would keep it
  conclab::unique_fd given(::open("/dev/null", O_RDONLY));
  ASSERT_TRUE(stray && given);
  auto is_open = [](int fd) { return ::fcntl(fd, F_GETFD) != -1; };
  Process p([&] { return (is_open(stray.get()) ? 1 : 0) | (is_open(given.get()) ? 0 : 2) | (is_open(2) ? 0 : 4); });
  p.set_pass_fds({given.get()});
  p.start();
  p.join();
  EXPECT_EQ(p.exitcode(), 0) << "1: a stray descriptor leaked into the child; 2: the given one was closed; 4: stderr";
  EXPECT_THROW(Process([] {}).set_pass_fds({-1}), UsageError);
}

TEST(Process, ChildChangesDoNotReachTheParent) {
  Process p([] { global_value = 99; });
  p.start();
  p.join();
  EXPECT_EQ(global_value, 1);
}

TEST(Process, ReturnValueIsTheExitCode) {
  Process p([] { return 3; });
  p.start();
  p.join();
  EXPECT_EQ(p.exitcode(), 3);
}

TEST(Process, ExceptionInTheChildGivesExitCodeOneAndAMessage) {
  Process p([] { throw std::runtime_error("child failed"); });
  p.set_name("worker");
  testing::internal::CaptureStderr();
  p.start();
  p.join();
  EXPECT_NE(testing::internal::GetCapturedStderr().find("Process worker: child failed"), std::string::npos);
  EXPECT_EQ(p.exitcode(), 1);
}

TEST(Process, KilledChildReportsTheSignal) {
  Process p([] { ::pause(); });
  p.start();
  EXPECT_TRUE(p.is_alive());
  p.kill();
  p.join();
  EXPECT_EQ(p.exitcode(), -SIGKILL);
  EXPECT_EQ(Process::describe_status(*p.exitcode()), "signal 9 (Killed)");

  Process q([] { ::pause(); });
  q.start();
  q.terminate();
  q.join();
  EXPECT_EQ(q.exitcode(), -SIGTERM);

  Process a([] { std::abort(); });
  a.start();
  a.join();
  EXPECT_EQ(a.exitcode(), -SIGABRT);
}

TEST(Process, JoinWithTimeoutReportsWhetherTheChildEnded) {
  // The child waits for the parent's word, so it cannot end before it is told.
  std::array<int, 2> fds{};
  ASSERT_EQ(::pipe(fds.data()), 0);
  conclab::unique_fd r(fds[0]), w(fds[1]);
  Process p([&] {
    char c;
    return ::read(r.get(), &c, 1) == 1 ? 0 : 5;
  });
  p.set_pass_fds({r.get()});
  p.start();
  auto start = std::chrono::steady_clock::now();
  EXPECT_FALSE(p.join(50ms));
  EXPECT_GE(std::chrono::steady_clock::now() - start, 50ms);
  EXPECT_FALSE(p.exitcode().has_value());
  ASSERT_EQ(::write(w.get(), "x", 1), 1);
  EXPECT_TRUE(p.join(10s));
  EXPECT_EQ(p.exitcode(), 0);
  EXPECT_FALSE(p.is_alive());
}

// join(timeout) with a timeout too large for a deadline waits for the end
// (it used to compute ceil<milliseconds>(hours::max()), which overflows, and
// return false at once); one too small polls. The child ends when a thread
// of the parent writes to its pipe, some 50 ms later.
TEST(Process, HugeJoinTimeoutWaitsForTheEnd) {
  auto check = [](auto timeout, const char* what) {
    std::array<int, 2> fds{};
    ASSERT_EQ(::pipe(fds.data()), 0);
    conclab::unique_fd r(fds[0]), w(fds[1]);
    Process p([&] {
      char c;
      return ::read(r.get(), &c, 1) == 1 ? 0 : 5;
    });
    p.set_pass_fds({r.get()});
    p.start();
    EXPECT_FALSE(p.join(std::chrono::hours::min())) << what;  // nobody has written: a poll, false
    EXPECT_FALSE(p.join(-timeout)) << what;
    std::thread opener([&] {
      std::this_thread::sleep_for(50ms);  // not a readiness wait: join must return true either way
      (void)!::write(w.get(), "x", 1);
    });
    EXPECT_TRUE(p.join(timeout)) << what;
    EXPECT_EQ(p.exitcode(), 0) << what;
    opener.join();
  };
  check(std::chrono::hours::max(), "hours::max()");
  check(std::chrono::nanoseconds::max(), "nanoseconds::max()");
  check(std::chrono::seconds(std::numeric_limits<long long>::max()), "seconds(LLONG_MAX)");
  check(std::chrono::duration<double>(1e300), "duration<double>(1e300)");
}

TEST(Process, MisuseThrows) {
  Process p([] {});
  EXPECT_THROW(p.join(), UsageError);
  EXPECT_THROW((void)p.join(10ms), UsageError);
  EXPECT_THROW(p.terminate(), UsageError);
  p.start();
  EXPECT_THROW(p.start(), UsageError);
  EXPECT_THROW(p.set_daemon(true), UsageError);
  p.join();
  p.join();  // joining again is fine
}

TEST(Process, JoinReapsTheChild) {
  Process p([] {});
  p.start();
  pid_t pid = *p.pid();
  p.join();
  EXPECT_TRUE(reaped(pid));
}

TEST(Process, DestructorReapsAnUnjoinedChild) {
  pid_t pid = 0;
  {
    Process p([] { ::usleep(50'000); });
    p.start();
    pid = *p.pid();
  }
  EXPECT_TRUE(reaped(pid));
}

TEST(Process, DestructorKillsADaemonChild) {
  pid_t pid = 0;
  auto start = std::chrono::steady_clock::now();
  {
    Process p([] { ::pause(); });
    p.set_daemon(true);
    p.start();
    pid = *p.pid();
  }
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
  EXPECT_TRUE(reaped(pid));
}

TEST(Process, BufferedOutputIsNotPrintedTwice) {
  testing::internal::CaptureStdout();
  std::printf("before fork ");  // buffered, not flushed
  Process p([] { std::printf("child "); });
  p.start();
  p.join();
  std::fflush(stdout);
  EXPECT_EQ(testing::internal::GetCapturedStdout(), "before fork child ");
}
