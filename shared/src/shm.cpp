#include "conclab/shm.hpp"

#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <limits>
#include <system_error>

#include "conclab/error.hpp"

namespace conclab {

// --- ProcessLock -------------------------------------------------------------------

ProcessLock::ProcessLock() {
  pthread_mutexattr_t attr;
  pthread_mutexattr_init(&attr);
  pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED);
  pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST);
  int rc = pthread_mutex_init(&mutex_, &attr);
  pthread_mutexattr_destroy(&attr);
  if (rc != 0) throw_errno("pthread_mutex_init", rc);
}

ProcessLock::~ProcessLock() { pthread_mutex_destroy(&mutex_); }

void ProcessLock::after_lock(int rc, const char* call) {
  if (rc == EOWNERDEAD) {
    // The holder died inside its critical section: take the lock over.
    pthread_mutex_consistent(&mutex_);
    owner_died_ = true;
    return;
  }
  if (rc != 0) throw_errno(call, rc);
}

void ProcessLock::lock() { after_lock(pthread_mutex_lock(&mutex_), "pthread_mutex_lock"); }

bool ProcessLock::try_lock() {
  int rc = pthread_mutex_trylock(&mutex_);
  if (rc == EBUSY) return false;
  after_lock(rc, "pthread_mutex_trylock");
  return true;
}

void ProcessLock::unlock() {
  int rc = pthread_mutex_unlock(&mutex_);
  if (rc != 0) throw_errno("pthread_mutex_unlock", rc);
}

// --- Segment ----------------------------------------------------------------------

namespace detail {

namespace bip = boost::interprocess;

namespace {
std::string unique_name() {
  static std::atomic<unsigned> counter{0};
  return fmt::format("conclab-{}-{}", ::getpid(), ++counter);
}

bip::managed_shared_memory create(const std::string& name, std::size_t bytes) {
  try {
    return bip::managed_shared_memory(bip::create_only, name.c_str(), bytes);
  } catch (const bip::interprocess_exception& e) {
    if (e.get_error_code() == bip::already_exists_error)
      throw std::system_error(EEXIST, std::generic_category(), fmt::format("shared memory '{}'", name));
    throw std::system_error(e.get_native_error() ? e.get_native_error() : EINVAL, std::generic_category(),
                            fmt::format("shared memory '{}' ({})", name, e.what()));
  }
}
}  // namespace

Segment::Segment(std::string name, std::size_t bytes)
    : name_(name.empty() ? unique_name() : std::move(name)), memory_(create(name_, bytes)) {
  // Mapped: the name is no longer needed. Removing it now, by its creator and
  // only once, means no crash of anyone can leave it behind in /dev/shm.
  bip::shared_memory_object::remove(name_.c_str());
}

void throw_index_error(std::size_t index, std::size_t size) {
  throw std::out_of_range(fmt::format("SharedArray index {} out of range [0, {})", index, size));
}

std::size_t segment_bytes(std::size_t count, std::size_t each, std::size_t extra, const char* what) {
  if (count > (std::numeric_limits<std::size_t>::max() - extra) / each)
    throw std::length_error(fmt::format("{} of {} entries does not fit in memory", what, count));
  return count * each + extra;
}

}  // namespace detail
}  // namespace conclab
