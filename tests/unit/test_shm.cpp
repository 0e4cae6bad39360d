#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <csignal>
#include <filesystem>
#include <limits>
#include <map>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "conclab/process.hpp"
#include "conclab/shm.hpp"

using conclab::FixedString;
using conclab::Process;
using conclab::SharedArray;
using conclab::SharedDict;

namespace {
bool in_dev_shm(const std::string& name) { return std::filesystem::exists("/dev/shm/" + name); }

// Runs `fn` in a child and waits for it; returns the child's exitcode.
template <class F>
int in_child(F fn) {
  Process p(fn);
  p.start();
  p.join();
  return *p.exitcode();
}

// Waits until done() is true or `limit` has passed; returns done().
template <class F>
bool wait_until(F done, std::chrono::seconds limit) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  while (!done() && std::chrono::steady_clock::now() < deadline) std::this_thread::yield();
  return done();
}

// Runs `check` (which returns "" when all is well, else what is wrong) in a
// child process and returns its report. A child that does not end within
// `limit` is killed and reported: a lock left held cannot hang the test run.
// The report comes back through shared memory (a child keeps no descriptor).
template <class F>
std::string in_child_within(std::chrono::seconds limit, F check) {
  SharedArray<FixedString<255>> report(1);
  Process p([&report, &check] {
    std::string problem;
    try {
      problem = check();
    } catch (const std::exception& e) {
      problem = std::string("threw: ") + e.what();
    }
    report[0] = std::string_view(problem).substr(0, 255);
  });
  p.set_daemon(true);
  p.start();
  if (!p.join(limit)) {
    p.kill();
    p.join();
    return "did not finish within " + std::to_string(limit.count()) + " s: it hangs";
  }
  if (*p.exitcode() != 0) return "ended with " + Process::describe_status(*p.exitcode());
  return report[0].str();
}

// What the kill test stores: every field derives from (key, n), so a record
// that is written only in part is told apart from any set() wrote whole.
struct Record {
  int key = 0;
  long n = 0;
  std::array<long, 6> check{};
  static Record make(int key, long n) {
    Record r{key, n, {}};
    for (std::size_t i = 0; i < r.check.size(); ++i) r.check[i] = n * 31 + key * 7 + static_cast<long>(i);
    return r;
  }
  bool operator==(const Record&) const = default;
};
}  // namespace

template <>
inline constexpr bool conclab::portable<Record> = true;  // plain values only

TEST(SharedArray, ChildrenWritesAreSeenByTheParent) {
  SharedArray<int> temp{11, 22, 33, 44};  // the seed's Array('i', [11,22,33,44])
  for (int i = 0; i < 2; ++i) EXPECT_EQ(in_child([&temp, i] { temp[static_cast<size_t>(i)] = 100 + i; }), 0);
  EXPECT_EQ(temp.snapshot(), (std::vector<int>{100, 101, 33, 44}));
}

TEST(SharedArray, OutOfRangeIndexThrows) {
  SharedArray<int> a(4);
  try {
    a[4] = 1;
    FAIL() << "a[4] did not throw";
  } catch (const std::out_of_range& e) {
    EXPECT_STREQ(e.what(), "SharedArray index 4 out of range [0, 4)");
  }
  EXPECT_THROW(SharedArray<int>(0), std::invalid_argument);
}

TEST(SharedArray, LockedIncrementsFromManyProcessesAreExact) {
  SharedArray<long> counter(1, 0);
  std::vector<Process> children;
  for (int c = 0; c < 4; ++c) {
    children.emplace_back([&counter] {
      for (int i = 0; i < 10000; ++i) {
        std::lock_guard guard(counter.get_lock());
        counter[0] += 1;
      }
    });
    children.back().start();
  }
  for (auto& p : children) p.join();
  EXPECT_EQ(counter[0], 40000);
}

TEST(SharedArray, ASizeBeyondMemoryIsAClearError) {
  const std::size_t huge = std::numeric_limits<std::size_t>::max() / 4;
  try {
    SharedArray<long> a(huge);
    FAIL() << "an array of " << huge << " longs was created";
  } catch (const std::length_error& e) {
    EXPECT_EQ(std::string(e.what()), "SharedArray of " + std::to_string(huge) + " entries does not fit in memory");
  }
  EXPECT_THROW((SharedDict<int, long>(huge)), std::length_error);
}

TEST(SharedArray, NameIsGoneFromDevShmOnceMapped) {
  SharedArray<int> a(8);
  EXPECT_EQ(a.name().rfind("conclab-", 0), 0u);
  EXPECT_FALSE(in_dev_shm(a.name()));
}

TEST(SharedArray, NameAlreadyInUseIsAClearError) {
  std::string name = "conclab-test-in-use-" + std::to_string(::getpid());
  int fd = ::shm_open(("/" + name).c_str(), O_CREAT | O_EXCL | O_RDWR, 0600);
  ASSERT_GE(fd, 0);
  ::close(fd);
  try {
    SharedArray<int> a(4, 0, name);
    ADD_FAILURE() << "a second segment under the same name was created";
  } catch (const std::system_error& e) {
    EXPECT_EQ(e.code().value(), EEXIST);
    EXPECT_NE(std::string(e.what()).find(name), std::string::npos) << e.what();
  }
  ::shm_unlink(("/" + name).c_str());  // ours: the test made it
  EXPECT_FALSE(in_dev_shm(name));
}

TEST(SharedArray, OwnerKilledBySigkillLeavesNothing) {
  std::string name = "conclab-test-killed-" + std::to_string(::getpid());
  int code = in_child([&name] {
    SharedArray<int> a(1024, 0, name);
    a[0] = 1;
    ::raise(SIGKILL);  // no destructor, no atexit: the harshest end
  });
  EXPECT_EQ(code, -SIGKILL);
  EXPECT_FALSE(in_dev_shm(name));
}

TEST(SharedArray, ACrashedChildDoesNotRemoveOrLeakTheSegment) {
  SharedArray<int> a{1, 2, 3};
  EXPECT_EQ(in_child([&a] {
              a[0] = 7;
              std::abort();
            }),
            -SIGABRT);
  a[1] = 8;  // still mapped and shared in the parent
  EXPECT_EQ(a.snapshot(), (std::vector<int>{7, 8, 3}));
}

TEST(ProcessLock, AChildDyingWithTheLockDoesNotHangTheParent) {
  SharedArray<int> a(1);
  EXPECT_EQ(in_child([&a] {
              a.get_lock().lock();
              ::_exit(0);  // never unlocks
            }),
            0);
  EXPECT_TRUE(a.get_lock().try_lock());
  EXPECT_TRUE(a.get_lock().owner_died());
  a.get_lock().unlock();
  std::lock_guard again(a.get_lock());
  EXPECT_FALSE(a.get_lock().owner_died());
}

TEST(SharedDict, ChildrenSetAndParentReads) {
  SharedDict<int, int> dic;  // the seed's manage.dict()
  for (int i = 0; i < 2; ++i) EXPECT_EQ(in_child([&dic, i] { dic.set(i, 100 + i); }), 0);
  EXPECT_EQ(dic.values(), (std::vector<int>{100, 101}));
  EXPECT_EQ(dic.keys(), (std::vector<int>{0, 1}));
  EXPECT_EQ(dic.at(1), 101);
  EXPECT_EQ(dic.size(), 2u);
  EXPECT_FALSE(in_dev_shm(dic.name()));
}

TEST(SharedDict, MissingKeyFullDictAndErase) {
  SharedDict<int, double> dic(3);
  EXPECT_FALSE(dic.get(5).has_value());
  EXPECT_THROW((void)dic.at(5), std::out_of_range);
  for (int i = 0; i < 3; ++i) dic.set(i, i * 1.5);
  dic.set(2, 9.0);  // overwriting needs no room
  try {
    dic.set(3, 1.0);
    FAIL() << "a fourth key fit in a dict of capacity 3";
  } catch (const std::length_error& e) {
    EXPECT_STREQ(e.what(), "SharedDict is full: capacity 3 entries");
  }
  EXPECT_TRUE(dic.erase(0));
  EXPECT_FALSE(dic.erase(0));
  dic.set(3, 1.0);  // room again
  EXPECT_EQ(dic.size(), 3u);
  EXPECT_THROW((SharedDict<int, int>(0)), std::invalid_argument);
}

TEST(SharedDict, ManyProcessesManyKeys) {
  SharedDict<int, long> dic(4000);
  std::vector<Process> children;
  for (int c = 0; c < 4; ++c) {
    children.emplace_back([&dic, c] {
      for (int i = 0; i < 1000; ++i) dic.set(c * 1000 + i, long{c});
    });
    children.back().start();
  }
  for (auto& p : children) {
    p.join();
    EXPECT_EQ(p.exitcode(), 0);
  }
  EXPECT_EQ(dic.size(), 4000u);
  EXPECT_EQ(dic.at(3999), 3);
}

TEST(SharedDict, FixedStringKeys) {
  SharedDict<FixedString<16>, int> ages;
  EXPECT_EQ(in_child([&ages] { ages.set("alice", 31); }), 0);
  EXPECT_EQ(ages.at("alice"), 31);
  EXPECT_EQ(ages.keys().at(0).str(), "alice");
  EXPECT_THROW(ages.set("a name far longer than sixteen", 1), std::length_error);
}

namespace {
constexpr int kKeys = 48;  // and the dict's capacity: it never fills

// A writer's n-th operation, the same for the same seed: set(key,
// Record::make(key, n)) three times in four, erase(key) otherwise.
struct Op {
  int key;
  bool erase;
  long n;
};
class Ops {
 public:
  explicit Ops(unsigned seed) : rng_(seed) {}
  Op next() {
    int key = static_cast<int>(rng_() % kKeys);
    return {key, rng_() % 4 == 0, ++n_};
  }

 private:
  std::minstd_rand rng_;
  long n_ = 0;
};

template <class Dict>
void run_op(Dict& dic, const Op& op) {
  if (op.erase)
    dic.erase(op.key);
  else if constexpr (requires { dic.set(op.key, Record{}); })
    dic.set(op.key, Record::make(op.key, op.n));
  else
    dic[op.key] = Record::make(op.key, op.n);
}

// After a writer that had completed `done` operations was killed: the dict
// must be in order and whole, exactly as after operation `done` or `done + 1`
// (the one it may have been in the middle of), and usable. Leaves it empty.
std::string check_after_kill(SharedDict<int, Record>& dic, long done, unsigned seed) {
  auto items = dic.items();  // the first operation after the kill
  for (std::size_t i = 0; i < items.size(); ++i) {
    const auto& [key, record] = items[i];
    if (i > 0 && !(items[i - 1].first < key)) return "keys not in strict order at " + std::to_string(key);
    if (record.key != key || record != Record::make(key, record.n))
      return "key " + std::to_string(key) + " holds a record no set() wrote";
  }
  if (dic.size() != items.size())
    return "size() " + std::to_string(dic.size()) + " != items() " + std::to_string(items.size());
  std::map<int, Record> model;
  Ops ops(seed);
  for (long n = 0; n < done; ++n) run_op(model, ops.next());
  auto same = [&] {
    return std::equal(items.begin(), items.end(), model.begin(), model.end(),
                      [](const auto& a, const auto& b) { return a.first == b.first && a.second == b.second; });
  };
  bool before = same();
  run_op(model, ops.next());
  if (!before && !same())
    return "the dict is neither as before operation " + std::to_string(done + 1) + " nor as after it";
  for (int key = 0; key < kKeys; ++key) dic.erase(key);  // the next operations, and a clean start
  dic.set(7, Record::make(7, 1));
  if (dic.at(7) != Record::make(7, 1) || dic.size() != 1 || !dic.erase(7) || dic.size() != 0)
    return "set/at/erase misbehave after the kill";
  return "";
}
}  // namespace

// A child killed by SIGKILL at a random moment while it sets and erases keys
// in a loop, hundreds of times: each time the dict is whole and ordered,
// exactly as before or after the call the child was in, and the next
// operations finish (they run in a child with a deadline, so a lock left held
// fails the test instead of hanging it).
TEST(SharedDict, AWriterKilledAtAnyMomentLeavesItWholeAndUsable) {
  constexpr int kRounds = 300;
  SharedDict<int, Record> dic(kKeys);
  SharedArray<long> progress(1, 0);  // operations the writer has completed
  std::atomic_ref<long> done(progress[0]);
  std::minstd_rand rng(2024);
  for (int round = 0; round < kRounds; ++round) {
    const auto seed = static_cast<unsigned>(round + 1);
    done.store(0);
    Process writer([&dic, &done, seed] {
      Ops ops(seed);
      for (;;) {
        auto op = ops.next();
        run_op(dic, op);
        done.store(op.n, std::memory_order_relaxed);
      }
    });
    writer.set_daemon(true);
    writer.start();
    ASSERT_TRUE(wait_until([&] { return done.load() >= 64; }, std::chrono::seconds(10)))
        << "round " << round << ": the writer is stuck (a lock left held by the last one?)";
    std::this_thread::sleep_for(std::chrono::microseconds(rng() % 200));
    writer.kill();
    writer.join();
    ASSERT_EQ(writer.exitcode(), -SIGKILL) << "round " << round;
    const long completed = done.load();
    auto problem = in_child_within(std::chrono::seconds(10), [&] { return check_after_kill(dic, completed, seed); });
    ASSERT_EQ(problem, "") << "round " << round << ", after " << completed << " operations";
  }
}
