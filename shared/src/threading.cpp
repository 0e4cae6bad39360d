#include "conclab/threading.hpp"

#include <fmt/core.h>

#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <mutex>

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
  if (!state_) throw UsageError("Thread was moved from");
  {
    std::lock_guard lock(state_->mutex);
    if (state_->started) throw UsageError(fmt::format("{}: threads can only be started once", state_->name));
    state_->started = true;
  }
  std::lock_guard join_lock(state_->join_mutex);
  try {
    thread_ = std::thread([state = state_] {
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
  } catch (const std::system_error&) {
    std::lock_guard lock(state_->mutex);
    state_->started = false;  // it never ran: allow another try, as Python does
    throw;
  }
}

void Thread::check_joinable() const {
  if (!state_) throw UsageError("Thread was moved from");
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
    std::unique_lock lock(state_->mutex);
    if (!state_->ended_cv.wait_for(lock, timeout, [&] { return state_->ended; })) return false;
  }
  // The target has returned; only the thread's own exit remains.
  std::lock_guard join_lock(state_->join_mutex);
  if (thread_.joinable()) thread_.join();
  return true;
}

bool Thread::is_alive() const {
  if (!state_) return false;
  std::lock_guard lock(state_->mutex);
  return state_->started && !state_->ended;
}

bool Thread::started() const {
  if (!state_) return false;
  std::lock_guard lock(state_->mutex);
  return state_->started;
}

std::string Thread::name() const { return state_->current_name(); }

Thread& Thread::set_name(std::string name) {
  std::lock_guard lock(state_->mutex);
  state_->name = std::move(name);
  return *this;
}

bool Thread::daemon() const {
  std::lock_guard lock(state_->mutex);
  return state_->daemon;
}

Thread& Thread::set_daemon(bool daemon) {
  std::lock_guard lock(state_->mutex);
  if (state_->started) throw UsageError(fmt::format("{}: cannot set daemon status of active thread", state_->name));
  state_->daemon = daemon;
  return *this;
}

std::optional<std::thread::id> Thread::ident() const {
  std::lock_guard lock(state_->mutex);
  if (!state_->started) return std::nullopt;
  return state_->id;
}

std::exception_ptr Thread::exception() const {
  std::lock_guard lock(state_->mutex);
  return state_->error;
}

// --- RLock ---------------------------------------------------------------------

void RLock::acquire() { acquire_until(std::chrono::steady_clock::time_point::max()); }

bool RLock::try_acquire() { return acquire_until(std::chrono::steady_clock::time_point::min()); }

bool RLock::acquire_until(std::chrono::steady_clock::time_point deadline) {
  const auto me = std::this_thread::get_id();
  std::unique_lock lock(mutex_);
  if (owner_ == me) {
    ++count_;
    return true;
  }
  auto free = [&] { return count_ == 0; };
  if (deadline == std::chrono::steady_clock::time_point::max())
    released_.wait(lock, free);
  else if (!released_.wait_until(lock, deadline, free))
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
