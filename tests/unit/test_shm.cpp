#include "conclab/shm.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <filesystem>
#include <string>
#include <vector>

#include "conclab/process.hpp"

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
}  // namespace

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
