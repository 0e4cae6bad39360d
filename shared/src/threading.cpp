#include "conclab/threading.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <fmt/core.h>
#include <fmt/ranges.h>
#include <pthread.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <memory>
#include <mutex>
#include <string_view>
#include <vector>

#include "conclab/fd.hpp"

namespace conclab {

namespace {
std::string next_default_name() {
  static std::atomic<unsigned> counter{0};
  return fmt::format("Thread-{}", ++counter);
}
}  // namespace

// Shared between the Thread object and the running thread, so that a daemon
// thread can outlive the object that started it.
struct Thread::State {
  std::function<void()> target;
  std::string name;
  bool daemon = false;
  bool started = false;

  mutable std::mutex mutex;
  std::condition_variable ended_cv;
  bool ended = false;
  std::exception_ptr error;
  std::thread::id id;

  std::string current_name() const {
    std::lock_guard lock(mutex);
    return name;
  }
  std::mutex join_mutex;  // guards Thread::thread_: join from two threads at once is UB
};

namespace {
// The name of the conclab Thread running on this OS thread (empty on the
// main thread and on threads conclab did not start).
thread_local std::function<std::string()> tls_current;
}  // namespace

std::string current_thread_name() {
  if (tls_current) return tls_current();
  if (::gettid() == ::getpid()) return "MainThread";
  return fmt::format("Dummy-{}", ::gettid());
}

Thread::Thread(std::function<void()> target) : state_(std::make_shared<State>()) {
  if (!target) throw UsageError("Thread needs a target");
  state_->target = std::move(target);
  state_->name = next_default_name();
}

Thread::Thread(Thread&&) noexcept = default;

Thread& Thread::operator=(Thread&& other) noexcept {
  if (this != &other) {
    finish();
    state_ = std::move(other.state_);
    thread_ = std::move(other.thread_);
  }
  return *this;
}

Thread::~Thread() { finish(); }

Thread::State& Thread::state() const {
  if (!state_) throw UsageError("use of a moved-from Thread (it gave its thread to another Thread object)");
  return *state_;
}

void Thread::finish() noexcept {
  if (!state_) return;
  std::lock_guard join_lock(state_->join_mutex);
  if (!thread_.joinable()) return;
  if (state_->daemon)
    thread_.detach();
  else
    thread_.join();
}

void Thread::start() {
  state();
  {
    std::lock_guard lock(state_->mutex);
    if (state_->started) throw UsageError(fmt::format("{}: threads can only be started once", state_->name));
    state_->started = true;
  }
  std::lock_guard join_lock(state_->join_mutex);
  try {
    thread_ = std::thread([state = state_] {
      tls_current = [s = state.get()] { return s->current_name(); };  // `state` outlives the thread
      std::exception_ptr error;
      try {
        state->target();
      } catch (...) {
        error = std::current_exception();
        std::fprintf(stderr, "Exception in thread %s: %s\n", state->current_name().c_str(), describe(error).c_str());
      }
      state->target = nullptr;  // release what the target captured, as Python does
      std::lock_guard lock(state->mutex);
      state->error = error;
      state->ended = true;
      state->ended_cv.notify_all();
    });
    std::lock_guard lock(state_->mutex);
    state_->id = thread_.get_id();
  } catch (const std::system_error& e) {
    {
      std::lock_guard lock(state_->mutex);
      state_->started = false;  // it never ran: allow another try, as Python does
    }
    // std::thread says only "Resource temporarily unavailable": name the call
    // and the limits that can run out.
    throw ThreadStartError(e.code());
  }
}

void Thread::check_joinable() const {
  state();
  std::lock_guard lock(state_->mutex);
  if (!state_->started) throw UsageError(fmt::format("{}: cannot join thread before it is started", state_->name));
  if (state_->id == std::this_thread::get_id())
    throw UsageError(fmt::format("{}: cannot join current thread", state_->name));
}

void Thread::join() {
  check_joinable();
  std::lock_guard join_lock(state_->join_mutex);
  if (thread_.joinable()) thread_.join();
}

bool Thread::join_for(std::chrono::nanoseconds timeout) {
  check_joinable();
  {
    auto ended = [&] { return state_->ended; };
    const auto deadline = detail::deadline_after(timeout);
    std::unique_lock lock(state_->mutex);
    if (!deadline)
      state_->ended_cv.wait(lock, ended);
    else if (!state_->ended_cv.wait_until(lock, *deadline, ended))
      return false;
  }
  // The target has returned; only the thread's own exit remains.
  std::lock_guard join_lock(state_->join_mutex);
  if (thread_.joinable()) thread_.join();
  return true;
}

bool Thread::is_alive() const {
  State& s = state();
  std::lock_guard lock(s.mutex);
  return s.started && !s.ended;
}

bool Thread::started() const {
  State& s = state();
  std::lock_guard lock(s.mutex);
  return s.started;
}

std::string Thread::name() const { return state().current_name(); }

Thread& Thread::set_name(std::string name) {
  State& s = state();
  std::lock_guard lock(s.mutex);
  s.name = std::move(name);
  return *this;
}

bool Thread::daemon() const {
  State& s = state();
  std::lock_guard lock(s.mutex);
  return s.daemon;
}

Thread& Thread::set_daemon(bool daemon) {
  State& s = state();
  std::lock_guard lock(s.mutex);
  if (s.started) throw UsageError(fmt::format("{}: cannot set daemon status of active thread", s.name));
  s.daemon = daemon;
  return *this;
}

std::optional<std::thread::id> Thread::ident() const {
  State& s = state();
  std::lock_guard lock(s.mutex);
  if (!s.started) return std::nullopt;
  return s.id;
}

std::exception_ptr Thread::exception() const {
  State& s = state();
  std::lock_guard lock(s.mutex);
  return s.error;
}

// --- RLock ---------------------------------------------------------------------

void RLock::acquire() { acquire_until(std::nullopt); }

bool RLock::try_acquire() { return acquire_until(std::chrono::steady_clock::time_point::min()); }

bool RLock::acquire_for(std::chrono::nanoseconds timeout) { return acquire_until(detail::deadline_after(timeout)); }

bool RLock::acquire_until(std::optional<std::chrono::steady_clock::time_point> deadline) {
  const auto me = std::this_thread::get_id();
  std::unique_lock lock(mutex_);
  if (owner_ == me) {
    ++count_;
    return true;
  }
  auto free = [&] { return count_ == 0; };
  if (!deadline)
    released_.wait(lock, free);
  else if (!released_.wait_until(lock, *deadline, free))
    return false;
  owner_ = me;
  count_ = 1;
  return true;
}

void RLock::release() {
  std::unique_lock lock(mutex_);
  if (count_ == 0 || owner_ != std::this_thread::get_id()) throw UsageError("cannot release un-acquired lock");
  if (--count_ == 0) {
    owner_ = std::thread::id();
    lock.unlock();
    released_.notify_one();
  }
}

bool RLock::is_owned() const {
  std::lock_guard lock(mutex_);
  return count_ > 0 && owner_ == std::this_thread::get_id();
}

unsigned RLock::depth() const {
  std::lock_guard lock(mutex_);
  return owner_ == std::this_thread::get_id() ? count_ : 0;
}

}  // namespace conclab

// --- thread limits -------------------------------------------------------------
//
// Read with plain open/read into small buffers: this runs when thread creation
// has just failed, possibly because the process is out of memory mappings.

namespace conclab {
namespace {

// The first `max` bytes of a file (enough for /proc's small files), or "".
std::string read_small(const char* path, std::size_t max = 4096) {
  unique_fd fd(::open(path, O_RDONLY | O_CLOEXEC));
  if (!fd) return {};
  std::string text(max, '\0');
  std::size_t got = 0;
  while (got < max) {
    ssize_t n = ::read(fd.get(), text.data() + got, max - got);
    if (n <= 0) break;
    got += static_cast<std::size_t>(n);
  }
  text.resize(got);
  return text;
}

// The number at the start of `text` (after blanks), or -1.
long leading_number(std::string_view text) {
  std::size_t i = text.find_first_not_of(" \t");
  if (i == std::string_view::npos || text[i] < '0' || text[i] > '9') return -1;
  return std::strtol(text.data() + i, nullptr, 10);
}

long read_number(const char* path) { return leading_number(read_small(path)); }

// The number after "<key>:" in a /proc/<pid>/status-like text, or -1.
long status_field(const std::string& status, std::string_view key) {
  std::size_t at = status.find(fmt::format("\n{}:", key));
  if (at == std::string::npos) return -1;
  return leading_number(std::string_view(status).substr(at + key.size() + 2));
}

// Lines in /proc/self/maps: this process's memory mappings.
long count_mappings() {
  unique_fd fd(::open("/proc/self/maps", O_RDONLY | O_CLOEXEC));
  if (!fd) return -1;
  char buffer[8192];
  long lines = 0;
  ssize_t n = 0;
  while ((n = ::read(fd.get(), buffer, sizeof buffer)) > 0) lines += std::count(buffer, buffer + n, '\n');
  return lines;
}

// Threads of every process whose real uid is `uid` (what RLIMIT_NPROC counts).
long threads_of_user(uid_t uid) {
  std::unique_ptr<DIR, int (*)(DIR*)> proc(::opendir("/proc"), ::closedir);
  if (!proc) return -1;
  long total = 0;
  while (const dirent* entry = ::readdir(proc.get())) {
    if (entry->d_name[0] < '0' || entry->d_name[0] > '9') continue;
    std::string status = "\n" + read_small(fmt::format("/proc/{}/status", entry->d_name).c_str());
    if (status_field(status, "Uid") == static_cast<long>(uid)) total += std::max(0L, status_field(status, "Threads"));
  }
  return total;
}

// The cgroup's pids.max and pids.current (cgroup v2, or v1's pids controller),
// or {-1, -1} when there is no such limit.
std::pair<long, long> cgroup_pids() {
  const std::string cgroups = read_small("/proc/self/cgroup");
  std::size_t start = 0;
  while (start < cgroups.size()) {
    std::size_t end = cgroups.find('\n', start);
    if (end == std::string::npos) end = cgroups.size();
    std::string_view line(cgroups.data() + start, end - start);
    start = end + 1;
    std::string dir;
    if (line.starts_with("0::"))
      dir = fmt::format("/sys/fs/cgroup{}", line.substr(3));
    else if (std::size_t at = line.find(":pids:"); at != std::string_view::npos)
      dir = fmt::format("/sys/fs/cgroup/pids{}", line.substr(at + 6));
    else
      continue;
    long max = read_number((dir + "/pids.max").c_str());  // -1 for "max" or no file
    if (max >= 0) return {max, read_number((dir + "/pids.current").c_str())};
  }
  return {-1, -1};
}

// The soft limit of `resource`, or -1 when unlimited.
long soft_limit(int resource) {
  rlimit limit{};
  if (::getrlimit(resource, &limit) != 0 || limit.rlim_cur == RLIM_INFINITY) return -1;
  return static_cast<long>(limit.rlim_cur);
}

// The stack size pthread_create gives a thread by default (std::thread uses it).
long default_stack_bytes() {
  pthread_attr_t attr;
  std::size_t size = 0;
  if (::pthread_getattr_default_np(&attr) != 0) return -1;
  ::pthread_attr_getstacksize(&attr, &size);
  ::pthread_attr_destroy(&attr);
  return static_cast<long>(size);
}

constexpr long kMappingsPerThread = 2;  // the stack and its guard page
constexpr long kSparedMappings = 64;    // left for malloc's arenas and the program's own mmaps
constexpr long kSparedArenaBytes = 2 * (64L << 20);

}  // namespace

std::string thread_limits() {
  const std::string status = "\n" + read_small("/proc/self/status");
  const long process_threads = status_field(status, "Threads");
  const long vm_kib = status_field(status, "VmSize");
  const long mappings = count_mappings();
  const long max_map_count = read_number("/proc/sys/vm/max_map_count");
  const long threads_max = read_number("/proc/sys/kernel/threads-max");
  const long pid_max = read_number("/proc/sys/kernel/pid_max");
  // The fourth field of /proc/loadavg is "running/total": every thread on the system.
  const std::string loadavg = read_small("/proc/loadavg");
  const std::size_t slash = loadavg.find('/');
  const long system_threads = slash == std::string::npos ? -1 : leading_number(std::string_view(loadavg).substr(slash + 1));
  const long stack = default_stack_bytes();
  const long nproc = soft_limit(RLIMIT_NPROC);
  const long address_space = soft_limit(RLIMIT_AS);
  const auto [pids_max, pids_current] = cgroup_pids();

  auto reached = [](bool at_limit) { return at_limit ? "reached: " : ""; };
  std::vector<std::string> limits;
  limits.push_back(fmt::format("vm.max_map_count={} ({}this process has {} memory mappings, {} per thread until joined)",
                               max_map_count, reached(mappings + kMappingsPerThread > max_map_count), mappings,
                               kMappingsPerThread));
  limits.push_back(fmt::format("kernel.threads-max={} ({}{} threads on the system)", threads_max,
                               reached(system_threads >= threads_max), system_threads));
  // A pid for every thread; the kernel keeps the lowest 300 for early processes.
  limits.push_back(fmt::format("kernel.pid_max={} ({}{} pids in use)", pid_max,
                               reached(system_threads + 300 >= pid_max), system_threads));
  if (nproc < 0)
    limits.emplace_back("ulimit -u=unlimited (RLIMIT_NPROC)");
  else if (::getuid() == 0)
    limits.push_back(fmt::format("ulimit -u={} (RLIMIT_NPROC, not enforced for root)", nproc));
  else {
    const long mine = threads_of_user(::getuid());
    limits.push_back(fmt::format("ulimit -u={} ({}{} threads of uid {}; RLIMIT_NPROC)", nproc, reached(mine >= nproc),
                                 mine, ::getuid()));
  }
  if (pids_max >= 0)
    limits.push_back(
        fmt::format("cgroup pids.max={} ({}{} in use)", pids_max, reached(pids_current >= pids_max), pids_current));
  if (address_space >= 0)
    limits.push_back(fmt::format("ulimit -v={} KiB ({}this process uses {} KiB, a thread stack {} KiB more)",
                                 address_space / 1024, reached((vm_kib * 1024 + stack) > address_space), vm_kib,
                                 stack / 1024));
  else
    limits.push_back(fmt::format("ulimit -s={} KiB per thread stack", stack / 1024));
  return fmt::format("this process has {} threads; limits: {}", process_threads, fmt::join(limits, ", "));
}

ThreadCapacity unjoined_thread_capacity() {
  const long max_map_count = read_number("/proc/sys/vm/max_map_count");
  const long mappings = count_mappings();
  ThreadCapacity capacity{std::numeric_limits<int>::max(), ""};
  if (max_map_count > 0 && mappings > 0) {
    long by_mappings = std::max(0L, (max_map_count - mappings - kSparedMappings) / kMappingsPerThread);
    capacity = {static_cast<int>(std::min<long>(by_mappings, capacity.threads)),
                fmt::format("each thread keeps {} of this process's vm.max_map_count={} memory mappings until it is "
                            "joined",
                            kMappingsPerThread, max_map_count)};
  }
  const long address_space = soft_limit(RLIMIT_AS);
  const long stack = default_stack_bytes();
  const long vm_kib = status_field("\n" + read_small("/proc/self/status"), "VmSize");
  if (address_space >= 0 && stack > 0 && vm_kib >= 0) {
    // malloc reserves 64 MiB of address space for each arena its threads use: spare two.
    long by_memory = std::max(0L, (address_space - vm_kib * 1024 - kSparedArenaBytes) / stack);
    if (by_memory < capacity.threads)
      capacity = {static_cast<int>(by_memory),
                  fmt::format("each thread keeps a {} KiB stack (ulimit -s) until it is joined, and ulimit -v "
                              "allows this process {} KiB of memory",
                              stack / 1024, address_space / 1024)};
  }
  if (!capacity.why.empty())
    capacity.why += "; running threads are also bounded by kernel.threads-max, kernel.pid_max and ulimit -u";
  return capacity;
}

ThreadStartError::ThreadStartError(std::error_code code)
    : std::system_error(code, "pthread_create (std::thread)"),
      message_(fmt::format("pthread_create (std::thread): {}; {}", code.message(), thread_limits())) {}

}  // namespace conclab
