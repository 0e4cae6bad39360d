// proc_counts.hpp — what this test process holds, read from /proc: the
// descriptors and threads a test compares before and after.
#pragma once

#include <dirent.h>

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

}  // namespace conclab::test
