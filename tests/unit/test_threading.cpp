#include "conclab/threading.hpp"

#include <gtest/gtest.h>
#include <pthread.h>
#include <sys/resource.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <fstream>
#include <future>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

using namespace std::chrono_literals;
using conclab::Thread;
using conclab::UsageError;

TEST(Thread, RunsTargetWithArguments) {
  int sum = 0;
  Thread t([&sum](int a, const std::string& b) { sum = a + static_cast<int>(b.size()); }, 40, std::string("ab"));
  t.start();
  t.join();
  EXPECT_EQ(sum, 42);
}

TEST(Thread, DefaultNamesAreNumberedAndCanBeSet) {
  Thread a([] {});
  Thread b([] {});
  EXPECT_EQ(a.name().rfind("Thread-", 0), 0u);
  EXPECT_NE(a.name(), b.name());
  a.set_name("reader");
  EXPECT_EQ(a.name(), "reader");
}

TEST(Thread, StartTwiceThrows) {
  Thread t([] {});
  t.start();
  EXPECT_THROW(t.start(), UsageError);
  t.join();
  try {
    t.start();
    FAIL() << "second start did not throw";
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("threads can only be started once"), std::string::npos);
  }
}

TEST(Thread, JoinBeforeStartThrows) {
  Thread t([] {});
  EXPECT_THROW(t.join(), UsageError);
  EXPECT_THROW((void)t.join(10ms), UsageError);
  try {
    t.join();
    FAIL() << "join before start did not throw";
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("cannot join thread before it is started"), std::string::npos);
  }
}

TEST(Thread, JoinFromItselfThrows) {
  std::promise<Thread*> self;
  std::string message;
  Thread t([&] {
    Thread* me = self.get_future().get();
    try {
      me->join();
    } catch (const UsageError& e) {
      message = e.what();
    }
  });
  t.start();
  self.set_value(&t);
  t.join();
  EXPECT_NE(message.find("cannot join current thread"), std::string::npos) << message;
}

TEST(Thread, SetDaemonAfterStartThrows) {
  Thread t([] {});
  t.set_daemon(true);
  EXPECT_TRUE(t.daemon());
  t.set_daemon(false);
  t.start();
  EXPECT_THROW(t.set_daemon(true), UsageError);
  EXPECT_FALSE(t.daemon());
  t.join();
}

TEST(Thread, JoinWithTimeoutReportsWhetherTheThreadEnded) {
  std::promise<void> go;
  Thread t([f = go.get_future().share()] { f.wait(); });
  t.start();
  EXPECT_FALSE(t.join(20ms));  // still blocked: Python would return None here
  EXPECT_TRUE(t.is_alive());
  go.set_value();
  EXPECT_TRUE(t.join(10s));
  EXPECT_FALSE(t.is_alive());
  EXPECT_TRUE(t.join(0ms));  // joining an ended thread again is fine
  t.join();
}

TEST(Thread, IsAliveFollowsTheLifecycle) {
  std::promise<void> go;
  Thread t([f = go.get_future().share()] { f.wait(); });
  EXPECT_FALSE(t.is_alive());
  EXPECT_FALSE(t.ident().has_value());
  t.start();
  EXPECT_TRUE(t.is_alive());
  EXPECT_TRUE(t.ident().has_value());
  go.set_value();
  t.join();
  EXPECT_FALSE(t.is_alive());
}

TEST(Thread, ExceptionInTargetIsReportedAndKept) {
  Thread t([] { throw std::runtime_error("boom"); });
  t.set_name("failing");
  testing::internal::CaptureStderr();
  t.start();
  t.join();
  std::string err = testing::internal::GetCapturedStderr();
  EXPECT_NE(err.find("Exception in thread failing: boom"), std::string::npos) << err;
  ASSERT_TRUE(t.exception());
  EXPECT_THROW(std::rethrow_exception(t.exception()), std::runtime_error);
}

TEST(Thread, DestructorJoinsANonDaemonThread) {
  std::atomic<bool> done{false};
  {
    Thread t([&] {
      std::this_thread::sleep_for(50ms);
      done = true;
    });
    t.start();
  }
  EXPECT_TRUE(done);
}

TEST(Thread, DestructorDetachesADaemonThread) {
  std::promise<void> go;
  std::promise<void> finished;
  auto finished_future = finished.get_future();
  {
    Thread t(
        [f = go.get_future().share()](std::promise<void> fin) {
          f.wait();
          fin.set_value();
        },
        std::move(finished));
    t.set_daemon(true);
    t.start();
  }  // returns while the thread is still blocked
  EXPECT_EQ(finished_future.wait_for(0ms), std::future_status::timeout);
  go.set_value();
  EXPECT_EQ(finished_future.wait_for(10s), std::future_status::ready);
}

TEST(Thread, ManyJoinersAtOnce) {
  std::promise<void> go;
  Thread t([f = go.get_future().share()] { f.wait(); });
  t.start();
  std::vector<std::thread> joiners;
  std::atomic<int> joined{0};
  for (int i = 0; i < 4; ++i)
    joiners.emplace_back([&] {
      t.join();
      if (!t.is_alive()) ++joined;  // each join returned after the end
    });
  go.set_value();
  for (auto& j : joiners) j.join();
  EXPECT_EQ(joined, 4);
}

TEST(Thread, MovesIntoAVector) {
  std::atomic<int> count{0};
  std::vector<Thread> threads;
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&] { ++count; });
    threads.back().start();
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(count, 8);
}

TEST(Thread, EmptyTargetIsRejected) { EXPECT_THROW(Thread(std::function<void()>{}), UsageError); }

// --- RLock -----------------------------------------------------------------------

using conclab::RLock;

TEST(RLock, IsReentrantForItsOwner) {
  RLock lock;
  lock.acquire();
  lock.acquire();
  EXPECT_EQ(lock.depth(), 2u);
  EXPECT_TRUE(lock.is_owned());
  lock.release();
  EXPECT_TRUE(lock.is_owned());
  lock.release();
  EXPECT_FALSE(lock.is_owned());
  EXPECT_EQ(lock.depth(), 0u);
}

TEST(RLock, ReleaseWithoutAcquireThrows) {
  RLock lock;
  try {
    lock.release();
    FAIL() << "release of a free lock did not throw";
  } catch (const UsageError& e) {
    EXPECT_STREQ(e.what(), "cannot release un-acquired lock");
  }
}

TEST(RLock, ReleaseByAnotherThreadThrows) {
  RLock lock;
  lock.acquire();
  bool threw = false;
  std::thread other([&] {
    try {
      lock.release();
    } catch (const UsageError&) {
      threw = true;
    }
  });
  other.join();
  EXPECT_TRUE(threw);
  EXPECT_TRUE(lock.is_owned());  // still ours, untouched
  lock.release();
}

// Asked from another thread without waiting: the lock is free only after
// the last of the owner's acquires is undone.
TEST(RLock, OtherThreadsWaitUntilFullyReleased) {
  RLock lock;
  auto free_for_another_thread = [&] {
    bool got = false;
    std::thread other([&] {
      got = lock.try_acquire();
      if (got) lock.release();
    });
    other.join();
    return got;
  };
  lock.acquire();
  lock.acquire();
  EXPECT_FALSE(free_for_another_thread());
  lock.release();
  EXPECT_FALSE(free_for_another_thread());  // one level still held
  lock.release();
  EXPECT_TRUE(free_for_another_thread());
  std::thread other([&] {
    std::lock_guard guard(lock);  // Lockable
  });
  other.join();
}

TEST(RLock, TryAcquireAndTimeout) {
  RLock lock;
  std::promise<void> held, done;
  std::thread owner([&] {
    std::unique_lock guard(lock);
    held.set_value();
    done.get_future().wait();
  });
  held.get_future().wait();
  EXPECT_FALSE(lock.try_acquire());
  auto start = std::chrono::steady_clock::now();
  EXPECT_FALSE(lock.try_acquire_for(30ms));
  EXPECT_GE(std::chrono::steady_clock::now() - start, 30ms);
  done.set_value();
  owner.join();
  EXPECT_TRUE(lock.try_lock_for(1s));
  lock.unlock();
}

TEST(RLock, CountsCorrectlyUnderContention) {
  RLock lock;
  long counter = 0;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&] {
      for (int i = 0; i < 10000; ++i) {
        std::lock_guard outer(lock);
        std::lock_guard inner(lock);  // re-entrant
        ++counter;
      }
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(counter, 40000);
}

// --- misuse and extreme timeouts (issue 6) ------------------------------------------

// Every method of a moved-from Thread throws UsageError naming the problem
// (it used to dereference a null state and crash).
TEST(Thread, MovedFromThrowsUsageError) {
  Thread a([] {});
  Thread b(std::move(a));
  auto expect_moved_from = [](auto&& call, const char* what) {
    try {
      call();
      ADD_FAILURE() << what << " on a moved-from Thread did not throw";
    } catch (const UsageError& e) {
      EXPECT_NE(std::string(e.what()).find("moved-from"), std::string::npos) << what << ": " << e.what();
    }
  };
  expect_moved_from([&] { (void)a.name(); }, "name()");
  expect_moved_from([&] { a.set_name("x"); }, "set_name()");
  expect_moved_from([&] { (void)a.daemon(); }, "daemon()");
  expect_moved_from([&] { a.set_daemon(true); }, "set_daemon()");
  expect_moved_from([&] { (void)a.ident(); }, "ident()");
  expect_moved_from([&] { (void)a.exception(); }, "exception()");
  expect_moved_from([&] { a.start(); }, "start()");
  expect_moved_from([&] { a.join(); }, "join()");
  expect_moved_from([&] { (void)a.join(1ms); }, "join(timeout)");
  expect_moved_from([&] { (void)a.is_alive(); }, "is_alive()");
  expect_moved_from([&] { (void)a.started(); }, "started()");
  // The moved-to Thread works, and a moved-from one can be assigned again.
  b.start();
  b.join();
  a = Thread([] {});
  a.start();
  a.join();
  EXPECT_FALSE(a.is_alive());
}

// A thread that ends only when released from another thread, for the timeout tests.
struct Gate {
  std::promise<void> go;
  std::shared_future<void> opened = go.get_future().share();
};

// join(timeout) with a timeout too large for a deadline waits as if forever
// (it used to overflow into a negative timeout and return false at once).
TEST(Thread, HugeJoinTimeoutWaitsForTheEnd) {
  auto check = [](auto timeout, const char* what) {
    Gate gate;
    Thread t([f = gate.opened] { f.wait(); });
    t.start();
    std::thread opener([&] { gate.go.set_value(); });
    EXPECT_TRUE(t.join(timeout)) << what;
    EXPECT_FALSE(t.is_alive()) << what;
    opener.join();
  };
  check(std::chrono::hours::max(), "hours::max()");
  check(std::chrono::nanoseconds::max(), "nanoseconds::max()");
  check(std::chrono::seconds(std::numeric_limits<long long>::max()), "seconds(LLONG_MAX)");
  check(std::chrono::duration<double>(1e300), "duration<double>(1e300)");
  check(std::chrono::steady_clock::duration::max() - 1ns, "steady_clock::duration::max() - 1ns");
}

// Zero and negative timeouts poll: false while the thread runs, true once it ended.
TEST(Thread, ZeroAndNegativeJoinTimeoutsPoll) {
  Gate gate;
  Thread t([f = gate.opened] { f.wait(); });
  t.start();
  EXPECT_FALSE(t.join(0ms));
  EXPECT_FALSE(t.join(-5s));
  EXPECT_FALSE(t.join(std::chrono::hours::min()));
  EXPECT_FALSE(t.join(std::chrono::nanoseconds::min()));
  EXPECT_TRUE(t.is_alive());
  gate.go.set_value();
  EXPECT_TRUE(t.join(std::chrono::hours::max()));
  EXPECT_TRUE(t.join(0ms));
  EXPECT_TRUE(t.join(-1s));
}

// try_acquire_for with a huge timeout waits until the owner releases (it used
// to compute a deadline in the past and give up at once).
TEST(RLock, HugeTimeoutWaitsForTheOwner) {
  auto check = [](auto timeout, const char* what) {
    conclab::RLock lock;
    std::promise<void> held;
    Gate release;
    std::thread owner([&] {
      lock.acquire();
      held.set_value();
      release.opened.wait();
      lock.release();
    });
    held.get_future().wait();
    std::thread opener([&] { release.go.set_value(); });
    EXPECT_TRUE(lock.try_acquire_for(timeout)) << what;
    EXPECT_TRUE(lock.is_owned()) << what;
    lock.release();
    opener.join();
    owner.join();
  };
  check(std::chrono::hours::max(), "hours::max()");
  check(std::chrono::nanoseconds::max(), "nanoseconds::max()");
  check(std::chrono::seconds(std::numeric_limits<long long>::max()), "seconds(LLONG_MAX)");
  check(std::chrono::steady_clock::duration::max(), "steady_clock::duration::max()");
}

// Zero and negative timeouts poll: the lock is taken when free, refused at once when held.
TEST(RLock, ZeroAndNegativeTimeoutsPoll) {
  conclab::RLock lock;
  EXPECT_TRUE(lock.try_acquire_for(-1s));
  lock.release();
  EXPECT_TRUE(lock.try_acquire_for(std::chrono::hours::min()));
  lock.release();
  std::promise<void> held;
  Gate release;
  std::thread owner([&] {
    std::lock_guard guard(lock);
    held.set_value();
    release.opened.wait();
  });
  held.get_future().wait();
  EXPECT_FALSE(lock.try_acquire_for(0ms));
  EXPECT_FALSE(lock.try_acquire_for(-1s));
  EXPECT_FALSE(lock.try_acquire_for(std::chrono::nanoseconds::min()));
  release.go.set_value();
  owner.join();
}

// --- thread limits (issue 6) ----------------------------------------------------------

namespace {
long read_proc_number(const char* path) {
  std::ifstream file(path);
  long value = -1;
  file >> value;
  return value;
}
}  // namespace

TEST(ThreadLimits, NameEveryLimitWithItsValue) {
  const std::string limits = conclab::thread_limits();
  for (auto [name, path] : {std::pair{"vm.max_map_count", "/proc/sys/vm/max_map_count"},
                            std::pair{"kernel.threads-max", "/proc/sys/kernel/threads-max"},
                            std::pair{"kernel.pid_max", "/proc/sys/kernel/pid_max"}})
    EXPECT_NE(limits.find(std::string(name) + "=" + std::to_string(read_proc_number(path)) + " ("), std::string::npos)
        << name << " missing from: " << limits;
  EXPECT_NE(limits.find("ulimit -u="), std::string::npos) << limits;
  EXPECT_EQ(limits.rfind("this process has ", 0), 0u) << limits;
  EXPECT_EQ(limits.find("reached"), std::string::npos) << "nothing is used up in a unit test: " << limits;

  const conclab::ThreadStartError error(std::make_error_code(std::errc::resource_unavailable_try_again));
  EXPECT_EQ(error.code().value(), EAGAIN);
  EXPECT_EQ(std::string(error.what()).rfind("pthread_create (std::thread): Resource temporarily unavailable; this "
                                            "process has ",
                                            0),
            0u)
      << error.what();
}

TEST(ThreadLimits, CapacityIsWhatTheMappingsLeave) {
  const long max_map_count = read_proc_number("/proc/sys/vm/max_map_count");
  const auto capacity = conclab::unjoined_thread_capacity();
  EXPECT_GT(capacity.threads, 0);
  EXPECT_LT(capacity.threads, max_map_count / 2);  // two mappings per thread, and the program has some
  EXPECT_NE(capacity.why.find("vm.max_map_count=" + std::to_string(max_map_count)), std::string::npos)
      << capacity.why;
}

// A thread that cannot get a stack: start() throws ThreadStartError naming
// pthread_create and the limit reached, and the Thread may start again later.
TEST(ThreadLimits, StartFailureNamesTheCallAndTheLimit) {
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  GTEST_SKIP() << "the sanitizers reserve terabytes of address space: no ulimit -v under them";
#else
  // A default stack larger than any that glibc keeps cached from earlier
  // threads, and an address-space limit with no room for it.
  pthread_attr_t saved_attr, big_attr;
  ASSERT_EQ(pthread_getattr_default_np(&saved_attr), 0);
  ASSERT_EQ(pthread_getattr_default_np(&big_attr), 0);
  ASSERT_EQ(pthread_attr_setstacksize(&big_attr, std::size_t{256} << 20), 0);
  rlimit saved_limit{};
  ASSERT_EQ(getrlimit(RLIMIT_AS, &saved_limit), 0);
  std::ifstream status("/proc/self/status");
  std::string line;
  long vm_kib = -1;
  while (std::getline(status, line))
    if (line.rfind("VmSize:", 0) == 0) vm_kib = std::stol(line.substr(7));
  ASSERT_GT(vm_kib, 0);
  const rlimit low{static_cast<rlim_t>(vm_kib + 16 * 1024) * 1024, saved_limit.rlim_max};

  Thread t([] {});
  std::string message;
  int code = 0;
  ASSERT_EQ(pthread_setattr_default_np(&big_attr), 0);
  ASSERT_EQ(setrlimit(RLIMIT_AS, &low), 0);
  try {
    t.start();
  } catch (const std::system_error& e) {
    message = e.what();
    code = e.code().value();
  }
  ASSERT_EQ(setrlimit(RLIMIT_AS, &saved_limit), 0);
  ASSERT_EQ(pthread_setattr_default_np(&saved_attr), 0);
  pthread_attr_destroy(&big_attr);
  pthread_attr_destroy(&saved_attr);

  EXPECT_EQ(code, EAGAIN) << message;
  EXPECT_EQ(message.rfind("pthread_create (std::thread): Resource temporarily unavailable; this process has ", 0),
            0u)
      << message;
  EXPECT_NE(message.find("ulimit -v="), std::string::npos) << message;
  EXPECT_NE(message.find("(reached: this process uses"), std::string::npos) << message;
  EXPECT_FALSE(t.started());
  t.start();  // it never ran, so it may start now, as in Python
  t.join();
  EXPECT_FALSE(t.is_alive());
#endif
}

TEST(Thread, CurrentThreadNameIsPythonsCurrentThreadName) {
  std::string inside, renamed;
  conclab::Thread t([&] { inside = conclab::current_thread_name(); });
  const std::string given = t.name();
  t.start();
  t.join();
  EXPECT_EQ(inside, given);  // "Thread-N"
  conclab::Thread named([&] { renamed = conclab::current_thread_name(); });
  named.set_name("worker");
  named.start();
  named.join();
  EXPECT_EQ(renamed, "worker");
  EXPECT_EQ(conclab::current_thread_name(), "MainThread");
  std::string foreign;
  std::thread plain([&] { foreign = conclab::current_thread_name(); });
  plain.join();
  EXPECT_EQ(foreign.rfind("Dummy-", 0), 0u) << foreign;
}
