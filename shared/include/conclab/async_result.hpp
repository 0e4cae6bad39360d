// async_result.hpp — AsyncResult, what apply_async() returns, shared by
// Pool (worker processes) and ThreadPool (worker threads); ResultStream,
// what imap() and imap_unordered() return; and the errors a task can end with.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <exception>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "conclab/clock.hpp"  // detail::deadline_after
#include "conclab/error.hpp"

namespace conclab {

// A task did not produce its result.
class TaskError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// The task threw in its worker; what() is "<exception type>: <message>".
class RemoteError : public TaskError {
 public:
  using TaskError::TaskError;
};

// The worker process died while running the task (killed, aborted, _exit):
// what() names the pid and the exit status or signal. CPython's Pool hangs
// forever here (gh-66587).
class WorkerLost : public TaskError {
 public:
  using TaskError::TaskError;
};

// The pool can run no more tasks (a worker could not be replaced, its
// initializer failed, its fork server died): every task not finished fails
// with it, and so does every later apply_async. Python's
// concurrent.futures calls this BrokenProcessPool.
class BrokenPool : public TaskError {
 public:
  using TaskError::TaskError;
};

namespace detail {

// Stores R, or nothing for void.
template <class R>
struct Slot {
  std::optional<R> value;
};
template <>
struct Slot<void> {};

template <class R>
class ResultState {
 public:
  template <class... V>
  void set_value(V&&... value) {
    {
      std::lock_guard lock(mutex_);
      if (ready_) return;
      if constexpr (!std::is_void_v<R>) slot_.value.emplace(std::forward<V>(value)...);
      ready_ = true;
    }
    done_.notify_all();
  }
  void set_error(std::exception_ptr error) {
    {
      std::lock_guard lock(mutex_);
      if (ready_) return;
      error_ = std::move(error);
      ready_ = true;
    }
    done_.notify_all();
  }
  bool wait_until(std::chrono::steady_clock::time_point deadline) {
    std::unique_lock lock(mutex_);
    return done_.wait_until(lock, deadline, [&] { return ready_; });
  }
  void wait() {
    std::unique_lock lock(mutex_);
    done_.wait(lock, [&] { return ready_; });
  }
  bool ready() const {
    std::lock_guard lock(mutex_);
    return ready_;
  }
  std::exception_ptr error() const {
    std::lock_guard lock(mutex_);
    return error_;
  }
  // Only after ready.
  const Slot<R>& slot() const { return slot_; }

 private:

  mutable std::mutex mutex_;
  std::condition_variable done_;
  bool ready_ = false;
  Slot<R> slot_;
  std::exception_ptr error_;
};

}  // namespace detail

// The future result of one task, as multiprocessing.pool.AsyncResult.
template <class R>
class AsyncResult {
 public:
  explicit AsyncResult(std::shared_ptr<detail::ResultState<R>> state) : state_(std::move(state)) {}

  // Waits for the result and returns a copy of it (so that
  // `const auto& v = pool.apply_async(f, 1).get();` holds its own value, not
  // a reference into a result that is gone at the end of the line); rethrows
  // the task's error (RemoteError, WorkerLost, BrokenPool, ...).
  R get() const {
    state_->wait();
    return result();
  }
  // The same, throwing TimeoutError when `timeout` passes first.
  template <class Rep, class Period>
  R get(std::chrono::duration<Rep, Period> timeout) const {
    if (!wait(timeout)) throw TimeoutError("AsyncResult.get: timed out");
    return result();
  }
  void wait() const { state_->wait(); }
  // Returns whether the result is ready within `timeout` (hours::max():
  // as long as it takes, clock.hpp).
  template <class Rep, class Period>
  bool wait(std::chrono::duration<Rep, Period> timeout) const {
    const auto deadline = detail::deadline_after(timeout);
    if (!deadline) {
      state_->wait();
      return true;
    }
    return state_->wait_until(*deadline);
  }
  [[nodiscard]] bool ready() const { return state_->ready(); }
  // Whether the task succeeded; UsageError before it is ready (Python: ValueError).
  [[nodiscard]] bool successful() const {
    if (!ready()) throw UsageError("AsyncResult is not ready");
    return !state_->error();
  }

 private:
  R result() const {
    if (auto e = state_->error()) std::rethrow_exception(e);
    if constexpr (!std::is_void_v<R>) return *state_->slot().value;
  }
  std::shared_ptr<detail::ResultState<R>> state_;
};

// The results of imap() / imap_unordered(), one at a time as they arrive:
//
//   for (int r : pool.imap(square, inputs)) ...      // range-for
//   while (auto r = stream.next()) ...                // or next()
//
// A chunk that failed makes next() throw its error at that chunk's place
// (ordered) or when it arrives (unordered).
template <class R>
class ResultStream {
 public:
  struct State {
    std::mutex mutex;
    std::condition_variable arrived;
    bool ordered = true;
    std::size_t chunks = 0;     // how many chunks were submitted
    std::size_t delivered = 0;  // chunks handed out so far
    std::map<std::size_t, std::pair<std::vector<R>, std::exception_ptr>> done;  // by chunk index
    std::deque<R> ready;        // values of handed-out chunks not yet returned
    void complete(std::size_t chunk, std::vector<R> values, std::exception_ptr error) {
      {
        std::lock_guard lock(mutex);
        done.emplace(chunk, std::make_pair(std::move(values), std::move(error)));
      }
      arrived.notify_all();
    }
  };

  explicit ResultStream(std::shared_ptr<State> state) : state_(std::move(state)) {}

  // The next result, or std::nullopt when all have been returned.
  std::optional<R> next() { return next_until(std::chrono::steady_clock::time_point::max()); }
  // The same, throwing TimeoutError when `timeout` passes first.
  template <class Rep, class Period>
  std::optional<R> next(std::chrono::duration<Rep, Period> timeout) {
    return next_until(detail::deadline_after(timeout).value_or(std::chrono::steady_clock::time_point::max()));
  }

  // Input iterator for range-for.
  class iterator {
   public:
    using value_type = R;
    using difference_type = std::ptrdiff_t;
    iterator() = default;
    explicit iterator(ResultStream* stream) : stream_(stream) { ++*this; }
    const R& operator*() const { return *current_; }
    iterator& operator++() {
      current_ = stream_->next();
      if (!current_) stream_ = nullptr;
      return *this;
    }
    void operator++(int) { ++*this; }
    bool operator==(const iterator& other) const { return stream_ == other.stream_; }

   private:
    ResultStream* stream_ = nullptr;
    std::optional<R> current_;
  };
  iterator begin() { return iterator(this); }
  iterator end() { return iterator(); }

 private:
  std::optional<R> next_until(std::chrono::steady_clock::time_point deadline) {
    auto& s = *state_;
    std::unique_lock lock(s.mutex);
    auto find = [&] { return s.ordered ? s.done.find(s.delivered) : s.done.begin(); };
    while (s.ready.empty()) {
      if (s.delivered == s.chunks) return std::nullopt;
      auto it = find();
      if (it == s.done.end()) {
        if (deadline == std::chrono::steady_clock::time_point::max()) {
          s.arrived.wait(lock);
        } else if (s.arrived.wait_until(lock, deadline) == std::cv_status::timeout && find() == s.done.end()) {
          throw TimeoutError("imap: timed out waiting for the next result");
        }
        continue;
      }
      auto [values, error] = std::move(it->second);
      s.done.erase(it);
      ++s.delivered;
      if (error) std::rethrow_exception(error);
      for (auto& v : values) s.ready.push_back(std::move(v));
    }
    R value = std::move(s.ready.front());
    s.ready.pop_front();
    return value;
  }

  std::shared_ptr<State> state_;
};

}  // namespace conclab
