// proc_counts.hpp — what this test process holds, read from /proc: the
// descriptors and threads a test compares before and after; and a uid that
// no process uses.
#pragma once

#include <dirent.h>
#include <pwd.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <set>
#include <stdexcept>
#include <string>

namespace conclab::test {

// Entries of a /proc/self directory, without . and ..
inline int proc_entries(const char* dir) {
  int n = 0;
  if (DIR* d = ::opendir(dir)) {
    while (::readdir(d)) ++n;
    ::closedir(d);
  }
  return n - 2;
}

// Open descriptors (opendir's own included: compare two counts, not a value).
inline int open_descriptors() { return proc_entries("/proc/self/fd"); }
inline int threads_of_this_process() { return proc_entries("/proc/self/task"); }

// How many descriptors this process's table holds now (FDSize in
// /proc/self/status; it only grows), or -1.
inline int fd_table_size() {
  std::ifstream status("/proc/self/status");
  for (std::string line; std::getline(status, line);)
    if (line.starts_with("FDSize:")) return std::stoi(line.substr(7));
  return -1;
}

// A uid that no process uses and no user owns, for a test (run as root) that
// becomes it to be bound by RLIMIT_NPROC: that limit counts every task of
// the uid on the machine, so under a shared uid (nobody) another test running
// at once (ctest -j, another checkout's ctest) would change the count. Tests
// start their search far apart, as tests/check.py's spare_uid() does. Call it
// before fork(): getpwuid() is not for a child of a threaded process.
inline uid_t spare_uid() {
  std::set<uid_t> in_use;
  if (DIR* d = ::opendir("/proc")) {
    while (dirent* e = ::readdir(d)) {
      if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
      std::ifstream status(std::string("/proc/") + e->d_name + "/status");
      for (std::string line; std::getline(status, line);)
        if (line.rfind("Uid:", 0) == 0) {
          in_use.insert(static_cast<uid_t>(std::strtoul(line.c_str() + 4, nullptr, 10)));
          break;
        }
    }
    ::closedir(d);
  }
  const uid_t start = 40000 + static_cast<uid_t>(::getpid()) % 20000;
  for (uid_t i = 0; i < 20000; ++i) {
    const uid_t uid = 40000 + (start - 40000 + i) % 20000;
    if (!in_use.count(uid) && ::getpwuid(uid) == nullptr) return uid;
  }
  throw std::runtime_error("no spare uid in [40000, 60000)");
}

}  // namespace conclab::test
