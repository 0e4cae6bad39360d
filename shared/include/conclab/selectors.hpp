// selectors.hpp — conclab's selectors module: wait for many descriptors at
// once, with select(), poll() or epoll behind one interface.
//
//   conclab::Selector<Handler*> sel(conclab::Backend::epoll);   // or DefaultSelector
//   sel.register_fd(listener.fileno(), conclab::EVENT_READ, &accept_handler);
//   for (;;)
//     for (auto& [key, events] : sel.select())                   // waits; no timeout
//       key.data->on_ready(events);                              // EVENT_READ / EVENT_WRITE
//
// The back ends, as a student meets them (seed 003):
//   select      a bit set of at most FD_SETSIZE (1024) descriptors, rebuilt
//               and scanned on every call: O(highest descriptor). A
//               descriptor >= FD_SETSIZE is refused with a clear error;
//               FD_SET on it would write past the set (undefined behaviour).
//   poll        an array of the registered descriptors, copied into the
//               kernel on every call: O(registered).
//   epoll       the kernel keeps the interest list; a call returns only the
//               ready ones: O(ready). Level-triggered: a descriptor is
//               reported as long as it is ready (like select and poll).
//   epoll_edge  epoll with EPOLLET: reported once when it *becomes* ready;
//               the program must read (or write) until EAGAIN, or the rest
//               waits for the next edge that may never come.
//
// Timers: call_later()/call_at() run a callback from select() once their
// time has come; the nearest deadline bounds the wait, so an event-loop
// server can "sleep" 100 ms for one client without blocking the others.
//
// Like every blocking call of conclab, select() also watches the stop pipe
// of stop_on_signals(): SIGINT/SIGTERM make it throw Interrupted.
// A Selector is used by one thread at a time.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace conclab {

enum class Backend { select, poll, epoll, epoll_edge };

// "select", "poll", "epoll", "epoll-edge".
[[nodiscard]] std::string_view backend_name(Backend backend) noexcept;
// The back end named `name` (as above; "epoll_edge" and "epoll-et" too).
// Throws std::invalid_argument naming the choices.
[[nodiscard]] Backend backend_from_name(std::string_view name);
inline constexpr Backend kBackends[] = {Backend::select, Backend::poll, Backend::epoll, Backend::epoll_edge};
inline constexpr Backend kDefaultBackend = Backend::epoll;

// Interest and readiness, as Python's selectors.EVENT_READ / EVENT_WRITE.
inline constexpr unsigned EVENT_READ = 1;
inline constexpr unsigned EVENT_WRITE = 2;

// A descriptor the back end cannot take (select: >= FD_SETSIZE), one
// registered twice, or one that is not registered. Python raises ValueError
// or KeyError for these.
class SelectorError : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

namespace detail {

// The back end proper: descriptors and event masks, no user data.
class Multiplexer {
 public:
  virtual ~Multiplexer() = default;
  virtual void add(int fd, unsigned events) = 0;
  virtual void modify(int fd, unsigned events) = 0;
  virtual void remove(int fd) noexcept = 0;
  // Waits at most `timeout_ms` (-1: no limit); appends (fd, events) pairs.
  // Returns false when a signal interrupted the wait (EINTR).
  virtual bool wait(int timeout_ms, std::vector<std::pair<int, unsigned>>& ready) = 0;
};

std::unique_ptr<Multiplexer> make_multiplexer(Backend backend);

// The timers of a selector: deadline order, cancellable by id.
class Timers {
 public:
  using Clock = std::chrono::steady_clock;
  std::uint64_t add(Clock::time_point when, std::function<void()> callback);
  bool cancel(std::uint64_t id) noexcept;
  // Milliseconds until the nearest deadline (rounded up), at most `limit_ms`
  // (-1: no limit); 0 when one is due.
  [[nodiscard]] int bound(int limit_ms) const;
  // Runs the callbacks whose time has come, in deadline order; a callback
  // may add or cancel timers.
  void run_due();
  [[nodiscard]] std::size_t size() const noexcept { return by_id_.size(); }

 private:
  std::multimap<Clock::time_point, std::uint64_t> queue_;
  std::unordered_map<std::uint64_t, std::pair<std::multimap<Clock::time_point, std::uint64_t>::iterator,
                                              std::function<void()>>>
      by_id_;
  std::uint64_t next_id_ = 1;
};

// Waits on the multiplexer and the stop pipe (registered with it the first
// time it exists; `stop_registered` remembers it), runs the due timers, and
// fills `ready` with the user's descriptors. Throws Interrupted on a stop signal.
void select_once(Multiplexer& mux, Backend backend, int& stop_registered, Timers& timers,
                 std::optional<int> timeout_ms, std::vector<std::pair<int, unsigned>>& ready);
void check_registration(Backend backend, int fd, unsigned events);

}  // namespace detail

// What register_fd() returns and select() reports: Python's SelectorKey.
template <class Data>
struct SelectorKey {
  int fd;
  unsigned events;  // the interest: EVENT_READ | EVENT_WRITE
  Data data;
};

template <class Data = std::uintptr_t>
class Selector {
 public:
  using Key = SelectorKey<Data>;
  using Clock = std::chrono::steady_clock;
  // One ready descriptor: a copy of its key (as Python's selectors returns,
  // so that unregistering one descriptor while handling another never
  // leaves a dangling entry) and what it is ready for.
  struct Ready {
    Key key;
    unsigned events;
  };

  explicit Selector(Backend backend = kDefaultBackend)
      : backend_(backend), mux_(detail::make_multiplexer(backend)) {}

  [[nodiscard]] Backend backend() const noexcept { return backend_; }

  // Watch `fd` for `events` (EVENT_READ, EVENT_WRITE or both). Throws
  // SelectorError when fd is negative, already registered, events is 0, or
  // (select) fd >= FD_SETSIZE.
  const Key& register_fd(int fd, unsigned events, Data data = Data{}) {
    detail::check_registration(backend_, fd, events);
    if (keys_.contains(fd)) throw SelectorError("register: descriptor " + std::to_string(fd) + " is already registered");
    mux_->add(fd, events);
    return keys_.emplace(fd, Key{fd, events, std::move(data)}).first->second;
  }
  // Changes the interest (and the data) of a registered descriptor.
  const Key& modify(int fd, unsigned events, Data data) {
    Key& key = find(fd, "modify");
    detail::check_registration(backend_, fd, events);
    if (events != key.events) mux_->modify(fd, events);
    key.events = events;
    key.data = std::move(data);
    return key;
  }
  const Key& modify(int fd, unsigned events) { return modify(fd, events, find(fd, "modify").data); }
  // Stops watching `fd` and returns its key. Unregister before closing the
  // descriptor (epoll forgets a closed one only when every copy is closed).
  Key unregister(int fd) {
    Key key = std::move(find(fd, "unregister"));
    keys_.erase(fd);
    mux_->remove(fd);
    return key;
  }

  [[nodiscard]] const Key& get_key(int fd) { return find(fd, "get_key"); }
  [[nodiscard]] bool contains(int fd) const { return keys_.contains(fd); }
  [[nodiscard]] std::size_t size() const noexcept { return keys_.size(); }

  // Waits until a registered descriptor is ready, `timeout` passes (zero:
  // just look) or a timer is due, runs the due timers, and returns the
  // ready descriptors (empty after a timeout). Throws Interrupted on a stop
  // signal. A callback run here may register, modify or unregister. A
  // descriptor unregistered while an earlier one of the list is handled is
  // still in the list: look with contains(fd) first if that can happen.
  std::vector<Ready> select(std::optional<std::chrono::nanoseconds> timeout = std::nullopt) {
    std::optional<int> timeout_ms;
    if (timeout) timeout_ms = static_cast<int>(std::clamp<long long>(
                     std::chrono::ceil<std::chrono::milliseconds>(*timeout).count(), 0, 1LL << 30));
    ready_fds_.clear();
    detail::select_once(*mux_, backend_, stop_fd_, timers_, timeout_ms, ready_fds_);
    std::vector<Ready> ready;
    for (auto [fd, events] : ready_fds_) {
      auto it = keys_.find(fd);
      if (it == keys_.end()) continue;  // unregistered by a timer's callback
      if (const unsigned wanted = events & it->second.events) ready.push_back(Ready{it->second, wanted});
    }
    return ready;
  }

  // Runs `callback` from select() once `delay` has passed (or at `when`);
  // returns an id for cancel_timer().
  template <class Rep, class Period>
  std::uint64_t call_later(std::chrono::duration<Rep, Period> delay, std::function<void()> callback) {
    return timers_.add(Clock::now() + std::chrono::ceil<Clock::duration>(delay), std::move(callback));
  }
  std::uint64_t call_at(Clock::time_point when, std::function<void()> callback) {
    return timers_.add(when, std::move(callback));
  }
  // False when the timer has already run or was cancelled.
  bool cancel_timer(std::uint64_t id) noexcept { return timers_.cancel(id); }
  [[nodiscard]] std::size_t timers() const noexcept { return timers_.size(); }

 private:
  Key& find(int fd, const char* call) {
    auto it = keys_.find(fd);
    if (it == keys_.end())
      throw SelectorError(std::string(call) + ": descriptor " + std::to_string(fd) + " is not registered");
    return it->second;
  }

  Backend backend_;
  std::unique_ptr<detail::Multiplexer> mux_;
  int stop_fd_ = -1;  // the stop pipe, once registered
  std::unordered_map<int, Key> keys_;
  detail::Timers timers_;
  std::vector<std::pair<int, unsigned>> ready_fds_;
};

// Python's DefaultSelector: the best back end on this system (epoll).
template <class Data = std::uintptr_t>
using DefaultSelector = Selector<Data>;

}  // namespace conclab
