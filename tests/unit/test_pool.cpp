#include "conclab/pool.hpp"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <future>
#include <numeric>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "conclab/wire.hpp"

using namespace std::chrono_literals;
using conclab::AsyncResult;
using conclab::Pool;
using conclab::RemoteError;
using conclab::TaskError;
using conclab::ThreadPool;
using conclab::UsageError;
using conclab::WorkerLost;

namespace {
int add100(int i) { return i + 100; }
int square(int x) { return x * x; }
std::string shout(std::string s, int times) {
  std::string out;
  for (int i = 0; i < times; ++i) out += s + "!";
  return out;
}
int fails(int) { throw std::invalid_argument("bad value"); }
int kill_self(int) {
  ::raise(SIGKILL);
  return 0;
}
int abort_self(int) { std::abort(); }
int exit_self(int code) { ::_exit(code); }
int slow(int ms) {
  ::usleep(static_cast<useconds_t>(ms) * 1000);
  return ms;
}
pid_t my_pid(int) { return ::getpid(); }
void nothing() {}
int initialized = 0;
void init_worker() { initialized = 42; }
int read_initialized(int) { return initialized; }
void failing_init() { throw std::runtime_error("no database"); }

// True when none of `pids` is still a child of ours (all reaped).
bool all_reaped(const std::vector<pid_t>& pids) {
  return std::all_of(pids.begin(), pids.end(),
                     [](pid_t p) { return ::waitpid(p, nullptr, WNOHANG) == -1 && errno == ECHILD; });
}
}  // namespace

TEST(Pool, TheSeedsCalls) {
  Pool pool(5);
  EXPECT_EQ(pool.apply(add100, 1), 101);
  EXPECT_EQ(pool.apply_async(add100, 1).get(), 101);
  std::vector<int> seen;
  std::mutex m;
  std::vector<AsyncResult<int>> results;
  for (int i = 0; i < 10; ++i)
    results.push_back(pool.apply_async(add100, std::tuple{i}, [&](const int& r) {
      std::lock_guard lock(m);
      seen.push_back(r);
    }));
  pool.close();
  pool.join();
  std::sort(seen.begin(), seen.end());
  std::vector<int> expected(10);
  std::iota(expected.begin(), expected.end(), 100);
  EXPECT_EQ(seen, expected);  // every callback ran before join() returned
  for (auto& r : results) EXPECT_TRUE(r.successful());
}

TEST(Pool, TasksRunInOtherProcesses) {
  Pool pool(2);
  EXPECT_NE(pool.apply(my_pid, 0), ::getpid());
  pool.apply(nothing);
  EXPECT_EQ(pool.apply(shout, "hi", 2), "hi!hi!");
  EXPECT_EQ(pool.apply(+[](int a, int b) { return a * b; }, 6, 7), 42);  // lambda without captures
}

TEST(Pool, MapAndImap) {
  Pool pool(3);
  std::vector<int> xs(100);
  std::iota(xs.begin(), xs.end(), 0);
  std::vector<int> squares;
  for (int x : xs) squares.push_back(x * x);
  EXPECT_EQ(pool.map(square, xs), squares);
  EXPECT_EQ(pool.map(square, xs, 7), squares);
  EXPECT_TRUE(pool.map(square, std::vector<int>{}).empty());
  std::vector<int> ordered;
  for (int r : pool.imap(square, xs, 3)) ordered.push_back(r);
  EXPECT_EQ(ordered, squares);
  std::vector<int> any;
  for (int r : pool.imap_unordered(square, xs)) any.push_back(r);
  std::sort(any.begin(), any.end());
  EXPECT_EQ(any, squares);
}

TEST(Pool, ExceptionInATaskComesBackFromGet) {
  Pool pool(2);
  auto r = pool.apply_async(fails, 1);
  try {
    (void)r.get();
    FAIL() << "get() did not throw";
  } catch (const RemoteError& e) {
    EXPECT_STREQ(e.what(), "std::invalid_argument: bad value");
  }
  EXPECT_FALSE(r.successful());
  EXPECT_THROW(pool.map(fails, std::vector<int>{1, 2, 3}), RemoteError);
  EXPECT_EQ(pool.apply(add100, 1), 101);  // the worker survived
}

TEST(Pool, ErrorCallbackGetsTheError) {
  Pool pool(1);
  std::string message;
  auto r = pool.apply_async(fails, std::tuple{1}, [](const int&) {},
                            [&](const std::exception& e) { message = e.what(); });
  r.wait();
  pool.close();
  pool.join();
  EXPECT_EQ(message, "std::invalid_argument: bad value");
}

TEST(Pool, AWorkerThatDiesFailsItsTaskAndIsReplaced) {
  Pool pool(2);
  using Case = std::pair<int (*)(int), std::string>;
  for (auto [fn, status] : {Case{kill_self, "signal 9 (Killed)"}, Case{abort_self, "signal 6 (Aborted)"}}) {
    try {
      pool.apply(fn, 0);
      FAIL() << "a dead worker's task succeeded";
    } catch (const WorkerLost& e) {
      EXPECT_NE(std::string(e.what()).find(status), std::string::npos) << e.what();
    }
  }
  try {
    pool.apply(exit_self, 3);
    FAIL() << "a dead worker's task succeeded";
  } catch (const WorkerLost& e) {
    EXPECT_NE(std::string(e.what()).find("exit status 3"), std::string::npos) << e.what();
  }
  EXPECT_EQ(pool.workers_replaced(), 3u);
  // The pool carries on at full size, and the other tasks were not lost.
  std::vector<int> xs(50, 1);
  EXPECT_EQ(pool.map(add100, xs), std::vector<int>(50, 101));
  EXPECT_EQ(pool.worker_pids().size(), 2u);
}

TEST(Pool, OnlyTheRunningTaskFailsWhenItsWorkerDies) {
  Pool pool(1);  // one worker: the next tasks wait in its socket behind the killer
  auto a = pool.apply_async(slow, 50);
  auto b = pool.apply_async(kill_self, 0);
  auto c = pool.apply_async(slow, 10);
  auto d = pool.apply_async(add100, 4);
  EXPECT_EQ(a.get(), 50);
  EXPECT_THROW(b.get(), WorkerLost);
  EXPECT_EQ(c.get(), 10);
  EXPECT_EQ(d.get(), 104);
}

TEST(Pool, KillingAWorkerFromOutside) {
  Pool pool(2);
  auto r = pool.apply_async(slow, 5000);
  std::this_thread::sleep_for(100ms);  // let it start
  auto killed = pool.worker_pids();
  for (pid_t pid : killed) ::kill(pid, SIGKILL);
  EXPECT_THROW(r.get(10s), WorkerLost);
  EXPECT_EQ(pool.apply(add100, 0), 100);
  EXPECT_TRUE(all_reaped(killed));  // the dead workers left no zombie
}

TEST(Pool, CallbackThatThrowsIsReportedAndThePoolCarriesOn) {
  Pool pool(2);
  testing::internal::CaptureStderr();
  auto r = pool.apply_async(add100, std::tuple{1}, [](const int&) { throw std::runtime_error("callback broke"); });
  EXPECT_EQ(r.get(), 101);
  EXPECT_EQ(pool.apply(add100, 2), 102);
  pool.close();
  pool.join();
  EXPECT_NE(testing::internal::GetCapturedStderr().find("Exception in callback: callback broke"), std::string::npos);
}

TEST(Pool, Initializer) {
  Pool pool(2, init_worker);
  EXPECT_EQ(pool.apply(read_initialized, 0), 42);
  EXPECT_EQ(initialized, 0);  // only in the workers
}

TEST(Pool, FailingInitializerFailsTasksInsteadOfLooping) {
  Pool pool(2, failing_init);
  try {
    (void)pool.apply_async(add100, 1).get(10s);
    FAIL() << "a task ran without its initializer";
  } catch (const TaskError& e) {
    EXPECT_NE(std::string(e.what()).find("no database"), std::string::npos) << e.what();
  }
  EXPECT_THROW((void)pool.apply_async(add100, 1).get(10s), TaskError);
}

TEST(Pool, MisuseIsReported) {
  EXPECT_THROW(Pool(0), std::invalid_argument);
  EXPECT_THROW(Pool(-3), std::invalid_argument);
  Pool pool(1);
  EXPECT_THROW(pool.join(), UsageError);  // still running
  auto pending = pool.apply_async(slow, 20);
  EXPECT_THROW((void)pending.successful(), UsageError);  // not ready yet
  pool.close();
  EXPECT_THROW(pool.apply_async(add100, 1), UsageError);
  EXPECT_THROW(pool.map(add100, std::vector<int>{1}), UsageError);
  pool.join();
  EXPECT_EQ(pending.get(), 20);  // close() let it finish
}

TEST(Pool, GetWithTimeout) {
  Pool pool(1);
  auto r = pool.apply_async(slow, 300);
  EXPECT_THROW((void)r.get(20ms), conclab::TimeoutError);
  EXPECT_FALSE(r.ready());
  EXPECT_EQ(r.get(10s), 300);
  EXPECT_TRUE(r.wait(0ms));
}

TEST(Pool, TerminateFailsUnfinishedTasksAndLeavesNoWorker) {
  std::vector<pid_t> pids;
  auto start = std::chrono::steady_clock::now();
  {
    Pool pool(2);
    std::vector<AsyncResult<int>> results;
    for (int i = 0; i < 6; ++i) results.push_back(pool.apply_async(slow, 2000));
    std::this_thread::sleep_for(50ms);
    pids = pool.worker_pids();
    pool.terminate();
    pool.join();
    for (auto& r : results) EXPECT_THROW(r.get(), TaskError);
  }
  EXPECT_LT(std::chrono::steady_clock::now() - start, 1500ms);
  EXPECT_EQ(pids.size(), 2u);
  EXPECT_TRUE(all_reaped(pids));
}

TEST(Pool, DestructorClosesAndJoins) {
  std::vector<pid_t> pids;
  AsyncResult<int>* keep = nullptr;
  std::optional<AsyncResult<int>> r;
  {
    Pool pool(2);
    r.emplace(pool.apply_async(slow, 100));
    pids = pool.worker_pids();
  }  // waits for the task, then for the workers
  keep = &*r;
  EXPECT_TRUE(keep->ready());
  EXPECT_EQ(keep->get(), 100);
  EXPECT_TRUE(all_reaped(pids));
}

// --- ThreadPool ---------------------------------------------------------------------------

TEST(ThreadPool, SameSurfaceAnyCallable) {
  ThreadPool pool(3);
  int base = 100;
  EXPECT_EQ(pool.apply([&](int i) { return i + base; }, 1), 101);  // captures are fine here
  std::atomic<int> calls{0};
  for (int i = 0; i < 10; ++i) pool.apply_async([](int x) { return x; }, std::tuple{i}, [&](const int&) { ++calls; });
  std::vector<int> xs(20);
  std::iota(xs.begin(), xs.end(), 0);
  auto squares = pool.map([](int x) { return x * x; }, xs);
  EXPECT_EQ(squares[19], 361);
  int total = 0;
  for (int r : pool.imap_unordered([](int x) { return x; }, xs, 4)) total += r;
  EXPECT_EQ(total, 190);
  pool.close();
  pool.join();
  EXPECT_EQ(calls, 10);
}

TEST(ThreadPool, TheTasksOwnExceptionComesBack) {
  ThreadPool pool(2);
  auto r = pool.apply_async([] { throw std::out_of_range("index 9"); });
  EXPECT_THROW(r.get(), std::out_of_range);
  EXPECT_FALSE(r.successful());
}

TEST(ThreadPool, TerminateFailsQueuedTasks) {
  ThreadPool pool(1);
  std::promise<void> go, started;
  auto blocker = pool.apply_async([&started, f = go.get_future().share()] {
    started.set_value();
    f.wait();
  });
  started.get_future().wait();  // the one thread is busy now
  auto queued = pool.apply_async([] { return 1; });
  pool.terminate();
  go.set_value();
  pool.join();
  EXPECT_NO_THROW(blocker.get());
  EXPECT_THROW(queued.get(), TaskError);
  EXPECT_THROW(pool.apply_async([] {}), UsageError);
}

TEST(ThreadPool, FailingInitializerFailsTasks) {
  ThreadPool pool(2, [] { throw std::runtime_error("no config"); });
  EXPECT_THROW((void)pool.apply_async([] { return 1; }).get(10s), TaskError);
  EXPECT_THROW(ThreadPool(0), std::invalid_argument);
}

TEST(Pool, FewTasksSpreadOverTheWorkers) {
  Pool pool(3);
  pool.map(add100, std::vector<int>{1, 2, 3});  // every worker up
  auto start = std::chrono::steady_clock::now();
  auto results = pool.map(slow, std::vector<int>{300, 300, 300}, 1);
  // Three workers, three tasks: about 0.3 s, not 0.6 s with two queued on one worker.
  EXPECT_LT(std::chrono::steady_clock::now() - start, 550ms);
  EXPECT_EQ(results, (std::vector<int>{300, 300, 300}));
}
