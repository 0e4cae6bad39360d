#include "conclab/threading.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <future>
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
      ++joined;
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

TEST(RLock, OtherThreadsWaitUntilFullyReleased) {
  RLock lock;
  lock.acquire();
  lock.acquire();
  std::atomic<bool> got{false};
  std::thread other([&] {
    std::lock_guard guard(lock);  // Lockable
    got = true;
  });
  lock.release();
  std::this_thread::sleep_for(30ms);
  EXPECT_FALSE(got);  // one level still held
  lock.release();
  other.join();
  EXPECT_TRUE(got);
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
