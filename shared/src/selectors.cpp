// selectors.cpp — the select, poll and epoll back ends of conclab::Selector.
#include "conclab/selectors.hpp"

#include <poll.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <fmt/format.h>

#include "conclab/error.hpp"
#include "conclab/fd.hpp"
#include "conclab/signals.hpp"

namespace conclab {

std::string_view backend_name(Backend backend) noexcept {
  switch (backend) {
    case Backend::select: return "select";
    case Backend::poll: return "poll";
    case Backend::epoll: return "epoll";
    case Backend::epoll_edge: return "epoll-edge";
  }
  return "?";
}

Backend backend_from_name(std::string_view name) {
  for (Backend b : kBackends)
    if (name == backend_name(b)) return b;
  if (name == "epoll_edge" || name == "epoll-et") return Backend::epoll_edge;
  throw std::invalid_argument(fmt::format("unknown selector '{}' (select, poll, epoll, epoll-edge)", name));
}

namespace detail {

namespace {

class SelectMux final : public Multiplexer {
 public:
  void add(int fd, unsigned events) override { interest_[fd] = events; }
  void modify(int fd, unsigned events) override { interest_[fd] = events; }
  void remove(int fd) noexcept override { interest_.erase(fd); }

  bool wait(int timeout_ms, std::vector<std::pair<int, unsigned>>& ready) override {
    // The sets are rebuilt on every call: select() overwrites them with the result.
    fd_set readers, writers;
    FD_ZERO(&readers);
    FD_ZERO(&writers);
    int highest = -1;
    for (auto [fd, events] : interest_) {
      if (events & EVENT_READ) FD_SET(fd, &readers);
      if (events & EVENT_WRITE) FD_SET(fd, &writers);
      highest = std::max(highest, fd);
    }
    timeval tv{timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    const int n = ::select(highest + 1, &readers, &writers, nullptr, timeout_ms < 0 ? nullptr : &tv);
    if (n < 0) {
      if (errno == EINTR) return false;
      throw_errno("select");
    }
    for (auto [fd, events] : interest_) {
      unsigned got = 0;
      if (FD_ISSET(fd, &readers)) got |= EVENT_READ;
      if (FD_ISSET(fd, &writers)) got |= EVENT_WRITE;
      if (got) ready.emplace_back(fd, got);
    }
    return true;
  }

 private:
  std::map<int, unsigned> interest_;  // ordered: the scan goes up the descriptors, as select's does
};

unsigned from_poll(short revents, unsigned interest) {
  unsigned got = 0;
  if (revents & (POLLIN | POLLPRI)) got |= EVENT_READ;
  if (revents & POLLOUT) got |= EVENT_WRITE;
  // An error or hang-up: whatever the descriptor waits for will not block
  // (and will report it), as Python's selectors does.
  if (revents & (POLLERR | POLLHUP | POLLNVAL)) got |= interest;
  return got;
}

class PollMux final : public Multiplexer {
 public:
  void add(int fd, unsigned events) override {
    index_[fd] = fds_.size();
    fds_.push_back(pollfd{fd, to_poll(events), 0});
  }
  void modify(int fd, unsigned events) override { fds_[index_.at(fd)].events = to_poll(events); }
  void remove(int fd) noexcept override {
    auto it = index_.find(fd);
    if (it == index_.end()) return;
    const std::size_t i = it->second;
    index_.erase(it);
    if (i + 1 != fds_.size()) {  // the last one takes the hole
      fds_[i] = fds_.back();
      index_[fds_[i].fd] = i;
    }
    fds_.pop_back();
  }

  bool wait(int timeout_ms, std::vector<std::pair<int, unsigned>>& ready) override {
    const int n = ::poll(fds_.data(), fds_.size(), timeout_ms);
    if (n < 0) {
      if (errno == EINTR) return false;
      throw_errno("poll");
    }
    for (const pollfd& p : fds_)
      if (p.revents)
        if (const unsigned got = from_poll(p.revents, from_events(p.events))) ready.emplace_back(p.fd, got);
    return true;
  }

 private:
  static short to_poll(unsigned events) {
    return static_cast<short>(((events & EVENT_READ) ? POLLIN : 0) | ((events & EVENT_WRITE) ? POLLOUT : 0));
  }
  static unsigned from_events(short events) {
    return ((events & POLLIN) ? EVENT_READ : 0u) | ((events & POLLOUT) ? EVENT_WRITE : 0u);
  }
  std::vector<pollfd> fds_;
  std::unordered_map<int, std::size_t> index_;
};

class EpollMux final : public Multiplexer {
 public:
  explicit EpollMux(bool edge) : edge_(edge), epfd_(check(::epoll_create1(EPOLL_CLOEXEC), "epoll_create1")) {}

  void add(int fd, unsigned events) override { control(EPOLL_CTL_ADD, fd, events); }
  void modify(int fd, unsigned events) override { control(EPOLL_CTL_MOD, fd, events); }
  void remove(int fd) noexcept override {
    // EBADF / ENOENT: already closed (and so gone from the set); Python ignores it too.
    ::epoll_ctl(epfd_.get(), EPOLL_CTL_DEL, fd, nullptr);
  }

  bool wait(int timeout_ms, std::vector<std::pair<int, unsigned>>& ready) override {
    events_.resize(std::max<std::size_t>(events_.size(), 64));
    const int n = ::epoll_wait(epfd_.get(), events_.data(), static_cast<int>(events_.size()), timeout_ms);
    if (n < 0) {
      if (errno == EINTR) return false;
      throw_errno("epoll_wait");
    }
    for (int i = 0; i < n; ++i) {
      const epoll_event& e = events_[static_cast<std::size_t>(i)];
      unsigned got = 0;
      if (e.events & (EPOLLIN | EPOLLPRI)) got |= EVENT_READ;
      if (e.events & EPOLLOUT) got |= EVENT_WRITE;
      if (e.events & (EPOLLERR | EPOLLHUP)) got |= EVENT_READ | EVENT_WRITE;  // masked by the interest later
      ready.emplace_back(e.data.fd, got);
    }
    if (static_cast<std::size_t>(n) == events_.size()) events_.resize(events_.size() * 2);  // more may be ready
    return true;
  }

 private:
  void control(int op, int fd, unsigned events) {
    epoll_event e{};
    e.events = ((events & EVENT_READ) ? EPOLLIN : 0u) | ((events & EVENT_WRITE) ? EPOLLOUT : 0u) |
               (edge_ ? static_cast<unsigned>(EPOLLET) : 0u);
    e.data.fd = fd;
    if (::epoll_ctl(epfd_.get(), op, fd, &e) < 0)
      throw_errno(op == EPOLL_CTL_ADD ? "epoll_ctl(ADD)" : "epoll_ctl(MOD)");
  }
  bool edge_;
  unique_fd epfd_;
  std::vector<epoll_event> events_;
};

}  // namespace

std::unique_ptr<Multiplexer> make_multiplexer(Backend backend) {
  switch (backend) {
    case Backend::select: return std::make_unique<SelectMux>();
    case Backend::poll: return std::make_unique<PollMux>();
    case Backend::epoll: return std::make_unique<EpollMux>(false);
    case Backend::epoll_edge: return std::make_unique<EpollMux>(true);
  }
  throw std::invalid_argument("unknown selector back end");
}

void check_registration(Backend backend, int fd, unsigned events) {
  if (fd < 0) throw SelectorError(fmt::format("register: invalid descriptor {}", fd));
  if (events == 0 || (events & ~(EVENT_READ | EVENT_WRITE)))
    throw SelectorError(fmt::format("register: invalid events {} (EVENT_READ, EVENT_WRITE or both)", events));
  // FD_SET(fd) with fd >= FD_SETSIZE writes past the fd_set: undefined
  // behaviour that glibc's fortify turns into an abort, Python's select()
  // into "filedescriptor out of range in select()".
  if (backend == Backend::select && fd >= FD_SETSIZE)
    throw SelectorError(fmt::format(
        "select: descriptor {} is not below FD_SETSIZE ({}); select() cannot watch it, use poll or epoll", fd,
        FD_SETSIZE));
}

void select_once(Multiplexer& mux, Backend backend, int& stop_registered, Timers& timers,
                 std::optional<int> timeout_ms, std::vector<std::pair<int, unsigned>>& ready) {
  if (stop_registered < 0 && stop_fd() >= 0) {
    check_registration(backend, stop_fd(), EVENT_READ);
    mux.add(stop_fd(), EVENT_READ);
    stop_registered = stop_fd();
  }
  using Clock = std::chrono::steady_clock;
  const auto until = timeout_ms ? std::optional(Clock::now() + std::chrono::milliseconds(*timeout_ms)) : std::nullopt;
  for (;;) {
    throw_if_stopped();
    int limit = -1;
    if (until) limit = static_cast<int>(std::max<long long>(
                   0, std::chrono::ceil<std::chrono::milliseconds>(*until - Clock::now()).count()));
    if (!mux.wait(timers.bound(limit), ready)) continue;  // EINTR: a stop signal throws above
    throw_if_stopped();
    if (stop_registered >= 0) std::erase_if(ready, [&](const auto& r) { return r.first == stop_registered; });
    // Back to the caller after one wait: with what is ready, or empty when
    // the time ran out or timers ran (they may change what it waits for).
    timers.run_due();
    return;
  }
}

std::uint64_t Timers::add(Clock::time_point when, std::function<void()> callback) {
  const std::uint64_t id = next_id_++;
  auto it = queue_.emplace(when, id);
  by_id_.emplace(id, std::make_pair(it, std::move(callback)));
  return id;
}

bool Timers::cancel(std::uint64_t id) noexcept {
  auto it = by_id_.find(id);
  if (it == by_id_.end()) return false;
  queue_.erase(it->second.first);
  by_id_.erase(it);
  return true;
}

int Timers::bound(int limit_ms) const {
  if (queue_.empty()) return limit_ms;
  const auto left = std::chrono::ceil<std::chrono::milliseconds>(queue_.begin()->first - Clock::now()).count();
  const int due = static_cast<int>(std::clamp<long long>(left, 0, 1LL << 30));
  return limit_ms < 0 ? due : std::min(limit_ms, due);
}

void Timers::run_due() {
  const auto now = Clock::now();
  // Only timers due now: one a callback adds for "now" waits for the next round.
  std::vector<std::uint64_t> due;
  for (auto it = queue_.begin(); it != queue_.end() && it->first <= now; ++it) due.push_back(it->second);
  for (std::uint64_t id : due) {
    auto it = by_id_.find(id);
    if (it == by_id_.end()) continue;  // cancelled by an earlier callback
    auto callback = std::move(it->second.second);
    queue_.erase(it->second.first);
    by_id_.erase(it);
    callback();
  }
}

}  // namespace detail
}  // namespace conclab
