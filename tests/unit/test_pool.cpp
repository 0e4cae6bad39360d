#include "conclab/pool.hpp"

#include <dirent.h>
#include <grp.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <future>
#include <limits>
#include <mutex>
#include <numeric>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "conclab/process.hpp"
#include "conclab/wire.hpp"
#include "proc_counts.hpp"

using namespace std::chrono_literals;
using conclab::AsyncResult;
using conclab::BrokenPool;
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

int pause_forever(int) {
  for (;;) ::pause();
}
// Tells the test, through a FIFO, that the task runs; then waits to be killed.
int announce_and_pause(std::string fifo) {
  int fd = ::open(fifo.c_str(), O_WRONLY);
  if (fd < 0 || ::write(fd, "x", 1) != 1) return -1;
  ::close(fd);
  return pause_forever(0);
}
// A gate for tasks, in a worker process or a thread: a task that calls
// wait_at_gate(gate.path) blocks until the test calls gate.open(n), which
// lets n tasks through. The test holds the FIFO open for reading and writing,
// so no open() blocks and the bytes wait in the pipe for the tasks that come;
// when the gate goes (the end of a failed test), a waiting task reads end of
// file and returns -1, so no pool waits forever on it.
struct Gate {
  std::string path = (std::filesystem::temp_directory_path() /
                      ("conclab-gate-" + std::to_string(::getpid()) + "-" + std::to_string(++count)))
                         .string();
  conclab::unique_fd fd;
  Gate() {
    if (::mkfifo(path.c_str(), 0600) == 0) fd.reset(::open(path.c_str(), O_RDWR | O_CLOEXEC));
  }
  ~Gate() { ::unlink(path.c_str()); }
  Gate(const Gate&) = delete;
  Gate& operator=(const Gate&) = delete;
  [[nodiscard]] bool ok() const { return static_cast<bool>(fd); }
  void open(std::size_t n = 1) { (void)!::write(fd.get(), std::string(n, 'x').data(), n); }
  static inline std::atomic<int> count{0};
};
// Waits at the gate; 7 once let through, -1 when the gate is gone.
int wait_at_gate(std::string fifo) {
  int fd = ::open(fifo.c_str(), O_RDONLY | O_CLOEXEC);
  char c = 0;
  const bool through = fd >= 0 && ::read(fd, &c, 1) == 1;
  if (fd >= 0) ::close(fd);
  return through ? 7 : -1;
}
// The same, returning the pid of the worker that ran it.
pid_t pid_after_gate(std::string fifo) { return wait_at_gate(std::move(fifo)) == 7 ? ::getpid() : -1; }
// The descriptors open in the calling process, but the one that lists them.
std::vector<int> open_descriptors(int) {
  std::vector<int> fds;
  DIR* dir = ::opendir("/proc/self/fd");
  if (!dir) return {-1};
  while (dirent* e = ::readdir(dir))
    if (e->d_name[0] != '.' && std::atoi(e->d_name) != ::dirfd(dir)) fds.push_back(std::atoi(e->d_name));
  ::closedir(dir);
  std::sort(fds.begin(), fds.end());
  return fds;
}

// A lock of the program's own, taken by tasks in the workers.
std::mutex program_lock;
int lock_and_print(int i) {
  std::lock_guard guard(program_lock);
  std::printf("task %d ran in worker %d\n", i, static_cast<int>(::getpid()));
  std::fflush(stdout);
  return i;
}

// True when none of `pids` exists any more: every worker was reaped (by the
// pool's fork server, itself reaped by the pool), none is left as a zombie.
bool all_gone(const std::vector<pid_t>& pids) {
  return std::all_of(pids.begin(), pids.end(), [](pid_t p) { return ::kill(p, 0) == -1 && errno == ESRCH; });
}

// Runs `body` in a child process (its own pool, its own limits) and returns
// its exit code; -1 when it had to be killed after `deadline` (a hang).
int in_child(int (*body)(), std::chrono::seconds deadline = 60s) {
  conclab::Process p(body);
  p.start();
  if (!p.join(deadline)) {
    p.kill();
    p.join();
    return -1;
  }
  return *p.exitcode();
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
  auto fifo = (std::filesystem::temp_directory_path() / ("conclab-test-" + std::to_string(::getpid()))).string();
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  conclab::unique_fd started(::open(fifo.c_str(), O_RDONLY | O_NONBLOCK));
  Pool pool(2);
  auto r = pool.apply_async(announce_and_pause, fifo);
  pollfd p{started.get(), POLLIN, 0};
  ASSERT_EQ(::poll(&p, 1, 10'000), 1) << "the task did not start";  // it runs now
  ::unlink(fifo.c_str());
  auto killed = pool.worker_pids();
  for (pid_t pid : killed) ::kill(pid, SIGKILL);
  EXPECT_THROW(r.get(10s), WorkerLost);
  // Wait, boundedly, until the pool has learnt of both deaths (a task handed
  // to a worker that died before reading it is lost too: nothing can tell).
  auto knows = [&] {
    auto now = pool.worker_pids();
    return std::none_of(killed.begin(), killed.end(),
                        [&](pid_t k) { return std::find(now.begin(), now.end(), k) != now.end(); });
  };
  for (int i = 0; i < 10'000 && !knows(); ++i) std::this_thread::sleep_for(1ms);
  ASSERT_TRUE(knows());
  EXPECT_EQ(pool.apply(add100, 0), 100);
  EXPECT_TRUE(all_gone(killed));  // the dead workers left no zombie
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

// An initializer that kills its worker (no exception to report) breaks the
// pool instead of respawning workers that die the same way, forever.
TEST(Pool, AnInitializerThatCrashesBreaksThePool) {
  Pool pool(2, +[] { ::raise(SIGKILL); });
  try {
    (void)pool.apply_async(add100, 1).get(10s);
    FAIL() << "a task ran without its initializer";
  } catch (const BrokenPool& e) {
    EXPECT_NE(std::string(e.what()).find("initializer"), std::string::npos) << e.what();
  }
  EXPECT_THROW((void)pool.apply_async(add100, 1), BrokenPool);
  EXPECT_EQ(pool.workers_replaced(), 0u);
}

TEST(Pool, InitializerWithArguments) {
  Pool pool(2, +[](int a, std::string b) { initialized = a + static_cast<int>(b.size()); }, 40, std::string("xy"));
  EXPECT_EQ(pool.apply(read_initialized, 0), 42);
}

TEST(Pool, MisuseIsReported) {
  EXPECT_THROW(Pool(0), std::invalid_argument);
  EXPECT_THROW(Pool(-3), std::invalid_argument);
  Pool pool(1);
  Gate gate;  // after the pool: gone first, so a task still waiting at it ends
  ASSERT_TRUE(gate.ok());
  EXPECT_THROW(pool.join(), UsageError);  // still running
  auto pending = pool.apply_async(wait_at_gate, gate.path);
  EXPECT_THROW((void)pending.successful(), UsageError);  // not ready: it waits at the gate
  pool.close();
  EXPECT_THROW(pool.apply_async(add100, 1), UsageError);
  EXPECT_THROW(pool.map(add100, std::vector<int>{1}), UsageError);
  gate.open();
  pool.join();
  EXPECT_EQ(pending.get(), 7);  // close() let it finish
}

TEST(Pool, GetWithTimeout) {
  Pool pool(1);
  auto r = pool.apply_async(slow, 300);
  EXPECT_THROW((void)r.get(20ms), conclab::TimeoutError);
  EXPECT_FALSE(r.ready());
  EXPECT_EQ(r.get(10s), 300);
  EXPECT_TRUE(r.wait(0ms));
}

// get(timeout), wait(timeout) and a stream's next(timeout) with a timeout too
// large for a deadline wait for the result (they used to add
// ceil<nanoseconds>(hours::max()) to now, which overflows, and time out at
// once); one too small polls. The tasks end when a thread opens their gate,
// some 50 ms later.
TEST(Pool, HugeGetTimeoutWaitsForTheResult) {
  auto check = [](auto timeout, const char* what) {
    Pool pool(2);
    ThreadPool threads(1);
    Gate gate;  // after the pools: gone first, so a task still waiting at it ends
    ASSERT_TRUE(gate.ok());
    auto in_process = pool.apply_async(wait_at_gate, gate.path);
    auto in_thread = threads.apply_async(wait_at_gate, gate.path);
    auto stream = pool.imap(wait_at_gate, std::vector<std::string>{gate.path});
    EXPECT_FALSE(in_process.wait(std::chrono::hours::min())) << what;  // the gate is shut: a poll, false
    EXPECT_THROW((void)in_thread.get(-timeout), conclab::TimeoutError) << what;
    EXPECT_THROW((void)stream.next(std::chrono::hours::min()), conclab::TimeoutError) << what;
    std::jthread opener([&] {
      std::this_thread::sleep_for(50ms);  // not a readiness wait: every call below must wait either way
      gate.open(3);
    });
    try {
      EXPECT_EQ(in_process.get(timeout), 7) << what;
      EXPECT_TRUE(in_process.wait(timeout)) << what;
      EXPECT_EQ(in_thread.get(timeout), 7) << what;
      EXPECT_EQ(stream.next(timeout), std::optional<int>(7)) << what;
      EXPECT_EQ(stream.next(timeout), std::nullopt) << what;
    } catch (const conclab::TimeoutError& e) {
      ADD_FAILURE() << what << ": " << e.what();
    }
  };
  check(std::chrono::hours::max(), "hours::max()");
  check(std::chrono::nanoseconds::max(), "nanoseconds::max()");
  check(std::chrono::seconds(std::numeric_limits<long long>::max()), "seconds(LLONG_MAX)");
  check(std::chrono::duration<double>(1e300), "duration<double>(1e300)");
}

TEST(Pool, TerminateFailsUnfinishedTasksAndLeavesNoWorker) {
  std::vector<pid_t> pids;
  std::optional<pid_t> server;
  {
    Pool pool(2);
    std::vector<AsyncResult<int>> results;
    // Tasks that never end: join() returns only because terminate() kills.
    for (int i = 0; i < 6; ++i) results.push_back(pool.apply_async(pause_forever, 0));
    pids = pool.worker_pids();
    server = pool.fork_server_pid();
    pool.terminate();
    pool.join();
    for (auto& r : results) EXPECT_THROW(r.get(), TaskError);
  }
  EXPECT_EQ(pids.size(), 2u);
  ASSERT_TRUE(server.has_value());
  pids.push_back(*server);
  EXPECT_TRUE(all_gone(pids));
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
  EXPECT_TRUE(all_gone(pids));
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
  // Three workers, three tasks: one each, not two queued behind one worker.
  auto pids = pool.map(my_pid, std::vector<int>{1, 2, 3}, 1);
  EXPECT_EQ(std::set<pid_t>(pids.begin(), pids.end()).size(), 3u);
}

// Lab 05's first wave: ten tasks submitted one by one to Pool(5) are dealt
// out one per worker in turn, so tasks 0..4 run on five different workers at
// once. Each task says it has started (its index, on a second FIFO) and then
// waits at a shut gate, so no worker frees up while the test watches: the
// first five to start must be 0..4. (Which worker runs 5..9 is not checked:
// once the gate opens, a worker that ends early may take two of them when
// they were not all dealt yet, as it should.)
pid_t announce_then_wait(std::string arrivals, int index, std::string gate) {
  int fd = ::open(arrivals.c_str(), O_WRONLY | O_CLOEXEC);
  const auto byte = static_cast<char>(index);
  const bool told = fd >= 0 && ::write(fd, &byte, 1) == 1;
  if (fd >= 0) ::close(fd);
  return told ? pid_after_gate(std::move(gate)) : -1;
}

TEST(Pool, TheFirstWaveGoesToEveryWorker) {
  Pool pool(5);
  Gate gate, arrivals;  // after the pool: gone first, so a task still waiting at one ends
  ASSERT_TRUE(gate.ok() && arrivals.ok());
  std::vector<AsyncResult<pid_t>> results;
  for (int i = 0; i < 10; ++i) results.push_back(pool.apply_async(announce_then_wait, arrivals.path, i, gate.path));
  std::set<int> started;
  while (started.size() < 5) {
    pollfd p{arrivals.fd.get(), POLLIN, 0};
    ASSERT_EQ(::poll(&p, 1, 10'000), 1) << "after 10 s only these tasks had started: "
                                        << ::testing::PrintToString(started);
    char byte = 0;
    ASSERT_EQ(::read(arrivals.fd.get(), &byte, 1), 1);
    started.insert(byte);
  }
  EXPECT_EQ(started, (std::set<int>{0, 1, 2, 3, 4})) << "a task of the second wave started before the first";
  gate.open(10);
  std::vector<pid_t> pids;
  for (auto& r : results) pids.push_back(r.get(10s));
  EXPECT_EQ(std::set<pid_t>(pids.begin(), pids.begin() + 5).size(), 5u) << "tasks 0..4 shared a worker";
  EXPECT_EQ(std::count(pids.begin(), pids.end(), -1), 0);
  auto workers = pool.worker_pids();
  for (pid_t pid : pids) EXPECT_NE(std::find(workers.begin(), workers.end(), pid), workers.end()) << pid;
}

// --- issue 6: fork safety, descriptors, failure paths, callbacks outside locks ------------

// Another thread of this program holds a lock of its own and stdout's lock
// while the workers are started and while one is replaced. Forked from this
// threaded process, a worker would inherit both locks held forever and hang
// in its first task; from the single-threaded fork server, it runs.
TEST(Pool, WorkersRunWhileAnotherThreadHoldsLocks) {
  std::promise<void> holding, release;
  std::thread holder([&, done = release.get_future()] {
    std::lock_guard guard(program_lock);
    ::flockfile(stdout);
    holding.set_value();
    done.wait();
    ::funlockfile(stdout);
  });
  holding.get_future().wait();
  struct Release {  // even when a check fails: the holder must let go, or the test hangs
    std::promise<void>& release;
    std::thread& holder;
    ~Release() {
      release.set_value();
      holder.join();
    }
  } release_at_end{release, holder};
  {
    Pool pool(2);  // started now
    try {
      EXPECT_EQ(pool.apply_async(lock_and_print, 1).get(10s), 1);
      EXPECT_THROW(pool.apply_async(kill_self, 0).get(10s), WorkerLost);  // a worker is replaced now
      EXPECT_EQ(pool.workers_replaced(), 1u);
      auto all = pool.map_async(lock_and_print, std::vector<int>{2, 3, 4, 5, 6, 7}, 1);
      EXPECT_EQ(all.get(10s), (std::vector<int>{2, 3, 4, 5, 6, 7}));
    } catch (const conclab::TimeoutError&) {
      ADD_FAILURE() << "a worker hung on a lock another thread of the parent held";
    }
    pool.terminate();  // whatever happened, do not wait for a hung worker
  }
}

TEST(Pool, WorkersInheritNoStrayDescriptor) {
  conclab::unique_fd stray(::open("/dev/null", O_RDONLY));  // no O_CLOEXEC
  ASSERT_TRUE(stray);
  Pool other(1);  // another pool's channels must not reach this one's workers either
  Pool pool(2);
  for (int i = 0; i < 2; ++i)  // 0, 1, 2, and the worker's own channel
    EXPECT_EQ(pool.apply_async(open_descriptors, 0).get(10s), (std::vector<int>{0, 1, 2, 3}));
}

// A dead worker that cannot be replaced: its task fails with WorkerLost,
// every other task with BrokenPool, and so does every later apply_async;
// nothing waits forever. The pool is made to fail for real: as an
// unprivileged user, its fork server is held to RLIMIT_NPROC 1, so its
// fork() of the replacement fails with EAGAIN.
//
// Root ignores RLIMIT_NPROC: as root, the child becomes a spare uid (chosen
// by the parent, before fork), one no other process uses. It used to become
// nobody, whose tasks other tests running at once (ctest -j, another
// checkout) also count.
uid_t limited_uid = 0;
bool become_limited_uid() {
  if (::geteuid() != 0) return true;
  return ::setgroups(0, nullptr) == 0 && ::setgid(limited_uid) == 0 && ::setuid(limited_uid) == 0;
}

int replacement_fails() {
  if (!become_limited_uid()) return 9;
  Pool pool(1);
  if (pool.apply(add100, 1) != 101) return 10;
  rlimit limit{1, 1};
  if (::prlimit(*pool.fork_server_pid(), RLIMIT_NPROC, &limit, nullptr) != 0) return 11;
  auto lost = pool.apply_async(kill_self, 0);
  auto waiting = pool.apply_async(add100, 2);  // in the dying worker's socket, behind it
  try {
    (void)lost.get(20s);
    return 12;
  } catch (const WorkerLost&) {
  } catch (...) {
    return 13;  // TimeoutError: the lost task was never failed
  }
  try {
    (void)waiting.get(20s);
    return 14;
  } catch (const BrokenPool& e) {
    const std::string what = e.what();
    if (what.find("could not be replaced: fork (in the pool's fork server)") == std::string::npos) {
      std::fprintf(stderr, "unexpected message: %s\n", e.what());
      return 15;
    }
  } catch (...) {
    return 16;
  }
  try {
    (void)pool.apply_async(add100, 3);
    return 17;  // the pool looked open
  } catch (const BrokenPool&) {
  }
  pool.close();
  pool.join();
  return 0;
}

TEST(Pool, AWorkerThatCannotBeReplacedBreaksThePool) {
  limited_uid = conclab::test::spare_uid();
  EXPECT_EQ(in_child(replacement_fails), 0) << "see the return codes in replacement_fails (-1: it hung)";
}

// The fork server dies (the manager's loop fails): every task fails, the pool
// refuses new ones, close() and join() return.
TEST(Pool, AFailedManagerLoopBreaksThePool) {
  Pool pool(2);
  auto running = pool.apply_async(pause_forever, 0);
  auto server = pool.fork_server_pid();
  ASSERT_TRUE(server.has_value());
  ASSERT_EQ(::kill(*server, SIGKILL), 0);
  EXPECT_THROW((void)running.get(10s), TaskError);  // WorkerLost or BrokenPool, whichever the pool saw first
  // The pool knows it is broken by now, or very soon: wait for that, boundedly.
  bool refused = false;
  for (int i = 0; i < 1000 && !refused; ++i) {
    try {
      (void)pool.apply_async(add100, 1).get(10s);
    } catch (const BrokenPool& e) {
      refused = std::string(e.what()).find("fork server") != std::string::npos;
    }
  }
  EXPECT_TRUE(refused);
  EXPECT_THROW((void)pool.apply_async(add100, 1), BrokenPool);
  pool.close();
  pool.join();
  EXPECT_TRUE(all_gone({*server}));
}

// Callbacks run with no pool lock held: an error callback may submit another
// task, or close the pool.
TEST(Pool, AnErrorCallbackMayCallThePool) {
  Pool pool(1);
  std::promise<int> again;
  pool.apply_async(fails, std::tuple{1}, [](const int&) {}, [&](const std::exception&) {
    pool.apply_async(add100, std::tuple{1}, [&](const int& v) { again.set_value(v); });
    pool.close();
  });
  auto f = again.get_future();
  ASSERT_EQ(f.wait_for(10s), std::future_status::ready) << "the callback did not get through (deadlock?)";
  EXPECT_EQ(f.get(), 101);
  pool.join();
}

// A broken pool used to fail a new task by calling its error callback under
// the pool's lock; a callback that called the pool then deadlocked. Now
// apply_async throws BrokenPool, and tasks failed by the break call their
// callbacks with no lock held.
TEST(Pool, ABrokenPoolNeverCallsBackUnderItsLock) {
  Pool pool(2, failing_init);
  EXPECT_THROW((void)pool.apply_async(add100, 1).get(10s), BrokenPool);  // broken now
  std::atomic<int> refused{0};
  conclab::Thread submitter([&] {
    for (int i = 0; i < 5; ++i) {
      try {
        pool.apply_async(add100, std::tuple{i}, [](const int&) {}, [&](const std::exception&) {
          (void)pool.apply_async(add100, 1);  // would deadlock under the lock
        });
      } catch (const BrokenPool&) {
        ++refused;
      }
    }
  });
  submitter.start();
  ASSERT_TRUE(submitter.join(10s)) << "deadlock: a callback ran under the pool's lock";
  EXPECT_EQ(refused, 5);
}

TEST(Pool, JoinFromACallbackIsRefused) {
  Pool pool(1);
  std::promise<std::string> said;
  pool.apply_async(add100, std::tuple{1}, [&](const int&) {
    pool.close();
    try {
      pool.join();
      said.set_value("joined");
    } catch (const UsageError& e) {
      said.set_value(e.what());
    }
  });
  auto f = said.get_future();
  ASSERT_EQ(f.wait_for(10s), std::future_status::ready);
  EXPECT_NE(f.get().find("callback"), std::string::npos);
  pool.join();
}

// get() returns a value of its own: binding it to a reference cannot dangle.
TEST(Pool, GetReturnsAValueNotAReferenceIntoTheResult) {
  static_assert(!std::is_reference_v<decltype(std::declval<const AsyncResult<std::string>&>().get())>);
  static_assert(!std::is_reference_v<decltype(std::declval<const AsyncResult<std::string>&>().get(1s))>);
  Pool pool(1);
  const auto& v = pool.apply_async(shout, std::string(64, 'a'), 2).get();  // the AsyncResult is gone after this line
  EXPECT_EQ(v.size(), 130u);
  ThreadPool threads(1);
  const auto& w = threads.apply_async([] { return std::vector<int>(1000, 7); }).get();
  EXPECT_EQ(w.back(), 7);
}

// A ThreadPool whose k-th thread cannot start throws from its constructor,
// after ending the threads it started (it used to hang joining them). The
// limit is real: RLIMIT_NPROC, which binds an unprivileged user only.
int thread_start_fails() {
  if (::geteuid() == 0) {  // root ignores RLIMIT_NPROC: become a spare uid
    if (!become_limited_uid()) return 20;
    ::prctl(PR_SET_DUMPABLE, 1);  // setuid made /proc/self root's: count ourselves too
  }
  const uid_t me = ::geteuid();
  // The threads (tasks) this user runs right now, anywhere on the machine.
  rlim_t running = 0;
  std::error_code ec;
  for (auto& proc : std::filesystem::directory_iterator("/proc", ec)) {
    std::error_code ec2;
    for (auto& task : std::filesystem::directory_iterator(proc.path() / "task", ec2)) {
      struct stat st {};
      if (::stat(task.path().c_str(), &st) == 0 && st.st_uid == me) ++running;
    }
  }
  rlimit limit{running + 2, running + 2};  // room for a thread or two, not six
  if (::setrlimit(RLIMIT_NPROC, &limit) != 0) return 21;
  try {
    ThreadPool pool(6);
    return 22;
  } catch (const std::runtime_error& e) {
    // "ThreadPool: could not start thread K of 6: ..." with K > 1: some had started.
    const std::string what = e.what();
    const auto at = what.find("could not start thread ");
    const int k = at == std::string::npos ? 0 : std::atoi(what.c_str() + at + 23);
    if (k < 2 || what.find(" of 6: ") == std::string::npos) {
      std::fprintf(stderr, "unexpected message: %s\n", e.what());
      return 23;
    }
  }
  return 0;
}

TEST(ThreadPool, AThreadThatCannotStartFailsTheConstructor) {
  limited_uid = conclab::test::spare_uid();
  EXPECT_EQ(in_child(thread_start_fails), 0) << "see the return codes in thread_start_fails (-1: it hung)";
}
