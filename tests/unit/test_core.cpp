// error.hpp, fd.hpp, clock.hpp and cli.hpp.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <sys/resource.h>

#include <array>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "conclab/cli.hpp"
#include "conclab/clock.hpp"
#include "conclab/error.hpp"
#include "conclab/fd.hpp"
#include "conclab/process.hpp"
#include "proc_counts.hpp"

using namespace std::chrono_literals;

namespace {
bool is_open(int fd) { return ::fcntl(fd, F_GETFD) != -1; }

// Runs parse_args on a command line given as strings.
std::optional<int> parse(CLI::App& app, std::vector<std::string> args) {
  args.insert(args.begin(), "prog");
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  return conclab::parse_args(app, static_cast<int>(argv.size()), argv.data());
}
}  // namespace

TEST(Error, CheckPassesResultsThrough) { EXPECT_EQ(conclab::check(7, "dup"), 7); }

TEST(Error, CheckNamesTheFailedCall) {
  try {
    conclab::check(::close(-1), "close");
    FAIL() << "close(-1) did not throw";
  } catch (const std::system_error& e) {
    EXPECT_EQ(e.code().value(), EBADF);
    EXPECT_EQ(std::string(e.what()), "close: Bad file descriptor");
  }
}

TEST(UniqueFd, ClosesOnDestruction) {
  std::array<int, 2> fds{};
  ASSERT_EQ(::pipe(fds.data()), 0);
  {
    conclab::unique_fd r(fds[0]), w(fds[1]);
    EXPECT_TRUE(is_open(fds[0]));
  }
  EXPECT_FALSE(is_open(fds[0]));
  EXPECT_FALSE(is_open(fds[1]));
}

TEST(UniqueFd, MovesOwnershipAndReleases) {
  std::array<int, 2> fds{};
  ASSERT_EQ(::pipe(fds.data()), 0);
  conclab::unique_fd a(fds[0]);
  conclab::unique_fd b(std::move(a));
  EXPECT_FALSE(a);
  EXPECT_EQ(b.get(), fds[0]);
  conclab::unique_fd c(fds[1]);
  c = std::move(b);  // closes the write end it held
  EXPECT_FALSE(is_open(fds[1]));
  int raw = c.release();
  EXPECT_FALSE(c);
  EXPECT_TRUE(is_open(raw));
  c.reset(raw);
  c.reset();
  EXPECT_FALSE(is_open(raw));
}

TEST(ReserveFdTable, GrowsTheTableAndHoldsNoDescriptor) {
  rlimit limit{};
  ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &limit), 0);
  const int want = static_cast<int>(std::min<rlim_t>(limit.rlim_cur, 3000));
  const int before = conclab::test::open_descriptors();
  EXPECT_EQ(conclab::reserve_fd_table(want), want);
  EXPECT_GE(conclab::test::fd_table_size(), want);
  EXPECT_EQ(conclab::test::open_descriptors(), before);
  EXPECT_EQ(conclab::reserve_fd_table(want), want) << "a second call, the table already that big";
  EXPECT_EQ(conclab::test::open_descriptors(), before);
}

TEST(ReserveFdTable, StopsAtTheSoftLimitAndGivesUpQuietlyWithNoDescriptorLeft) {
  // In a child: its limit and its exhausted table stay there.
  // Exit codes: 0 ok, 2 not capped, 3 table not grown, 4 no 0 when out of
  // descriptors, 5 a descriptor left, 6 no 0 for n <= 0.
  conclab::Process child([]() -> int {
    rlimit limit{};
    if (::getrlimit(RLIMIT_NOFILE, &limit) < 0) return 10;
    limit.rlim_cur = std::min<rlim_t>(limit.rlim_max, 300);
    if (::setrlimit(RLIMIT_NOFILE, &limit) < 0) return 11;
    const int soft = static_cast<int>(limit.rlim_cur);
    if (conclab::reserve_fd_table(0) != 0 || conclab::reserve_fd_table(-5) != 0) return 6;
    if (conclab::reserve_fd_table(1 << 20) != soft) return 2;
    if (conclab::test::fd_table_size() < soft) return 3;
    // Every number taken but one low one: the probe gets it, and the copy to
    // soft - 1 finds no number free there. 0, and the probe is given back.
    std::vector<int> hogs;
    for (int fd; (fd = ::dup(0)) >= 0;) hogs.push_back(fd);
    if (hogs.size() < 2) return 12;  // no descriptor 0 to copy
    const int spare = hogs.front();
    ::close(spare);
    const int refused = conclab::reserve_fd_table(soft);
    const int again = ::dup(0);  // the spare number, if nothing kept it
    for (int fd : hogs)
      if (fd != spare) ::close(fd);
    if (again >= 0) ::close(again);
    if (refused != 0) return 4;
    if (again != spare) return 5;
    return 0;
  });
  child.start();
  ASSERT_TRUE(child.join(60s)) << "the child hung";
  EXPECT_EQ(child.exitcode(), 0);
}

TEST(Stopwatch, MeasuresASleep) {
  conclab::Stopwatch sw;
  std::this_thread::sleep_for(20ms);
  EXPECT_GE(sw.seconds(), 0.020);
  EXPECT_LT(sw.seconds(), 5.0);
  EXPECT_DOUBLE_EQ(conclab::to_seconds(1500ms), 1.5);
}

TEST(Cli, GoodFlagsParse) {
  CLI::App app;
  conclab::WorkerFlags flags;
  conclab::add_worker_flags(app, flags);
  EXPECT_EQ(parse(app, {"--tasks", "7", "--sleep-ms", "20"}), std::nullopt);
  EXPECT_EQ(flags.tasks, 7);
  EXPECT_EQ(flags.sleep(), 20ms);
}

TEST(Cli, HelpExitsZero) {
  CLI::App app;
  conclab::WorkerFlags flags;
  conclab::add_worker_flags(app, flags);
  testing::internal::CaptureStdout();
  EXPECT_EQ(parse(app, {"--help"}), 0);
  EXPECT_NE(testing::internal::GetCapturedStdout().find("--sleep-ms"), std::string::npos);
}

TEST(Cli, BadValuesExitTwoWithOneLine) {
  for (std::vector<std::string> bad : std::vector<std::vector<std::string>>{
           {"--tasks", "0"}, {"--tasks", "-3"}, {"--tasks", "abc"}, {"--sleep-ms", "0"}, {"--bogus"}, {"--tasks"}}) {
    CLI::App app;
    conclab::WorkerFlags flags;
    conclab::add_worker_flags(app, flags);
    testing::internal::CaptureStderr();
    EXPECT_EQ(parse(app, bad), conclab::kExitUsage) << bad[0];
    std::string err = testing::internal::GetCapturedStderr();
    EXPECT_EQ(std::count(err.begin(), err.end(), '\n'), 1) << err;
  }
}

TEST(Cli, RunMainTurnsErrorsIntoExitOne) {
  testing::internal::CaptureStderr();
  int code = conclab::run_main([] { conclab::check(::close(-1), "close"); });
  EXPECT_EQ(code, conclab::kExitFailure);
  EXPECT_EQ(testing::internal::GetCapturedStderr(), "error: close: Bad file descriptor\n");
  EXPECT_EQ(conclab::run_main([] { return 3; }), 3);
  EXPECT_EQ(conclab::run_main([] {}), 0);
}

// A program that starts a thread per task lowers --tasks to what the machine
// allows, and --help says what sets the bound.
TEST(Cli, WorkerFlagsTakeALowerBoundAndSayWhy) {
  CLI::App app;
  conclab::WorkerFlags flags;
  conclab::add_worker_flags(app, flags, 50, "each task is a thread");
  testing::internal::CaptureStdout();
  EXPECT_EQ(parse(app, {"--help"}), 0);
  std::string help = testing::internal::GetCapturedStdout();
  EXPECT_NE(help.find("INT:[1, 50]"), std::string::npos) << help;
  EXPECT_NE(help.find("at most 50 here: each task is a thread"), std::string::npos) << help;
  EXPECT_EQ(parse(app, {"--tasks", "50"}), std::nullopt);
  testing::internal::CaptureStderr();
  EXPECT_EQ(parse(app, {"--tasks", "51"}), conclab::kExitUsage);
  EXPECT_NE(testing::internal::GetCapturedStderr().find("51 is not in [1, 50]"), std::string::npos);
}
