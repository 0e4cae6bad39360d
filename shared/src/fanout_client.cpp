// The fan-out client driver (fanout_client.hpp): what both drivers share —
// the outcome of one request, its kind and message, the report, the
// descriptor limit, the source addresses — and the epoll driver. The
// forking driver is in fanout_client_fork.cpp.
#include "conclab/fanout_client.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <deque>
#include <stdexcept>

#include <fmt/format.h>

#include "conclab/error.hpp"
#include "conclab/fd.hpp"
#include "conclab/socket.hpp"
#include "fanout_client_detail.hpp"

namespace conclab::fanout {

const char* error_key(ErrorKind kind) {
  static constexpr std::array<const char*, kErrorKinds> keys{"refused", "reset", "timed_out", "short", "other"};
  return keys.at(static_cast<std::size_t>(kind));
}

std::int64_t ClientReport::error_count() const {
  std::int64_t n = 0;
  for (auto e : errors) n += e;
  return n;
}

std::string ClientReport::summary_line() const {
  std::string line = fmt::format("clients={} requests={} bytes={} ok={} wall_s={:.3f} rps={:.1f} p50_ms={:.3f} "
                                 "p90_ms={:.3f} p99_ms={:.3f} max_ms={:.3f}",
                                 clients, requests, bytes, ok, wall_s, rps, p50_ms, p90_ms, p99_ms, max_ms);
  for (int k = 0; k < kErrorKinds; ++k) line += fmt::format(" {}={}", error_key(static_cast<ErrorKind>(k)), errors[k]);
  line += fmt::format(" unfinished={} fd_limit={}", unfinished, fd_limit);
  return line;
}

std::string ClientReport::json() const {
  // The line's keys and values, the numbers written as the line writes them.
  std::string out = "{";
  const std::string text = summary_line();
  std::string_view line = text;
  bool first = true;
  while (!line.empty()) {
    const auto end = std::min(line.find(' '), line.size());
    const auto pair = line.substr(0, end);
    const auto eq = pair.find('=');
    out += fmt::format("{}\"{}\": {}", first ? "" : ", ", pair.substr(0, eq), pair.substr(eq + 1));
    first = false;
    line.remove_prefix(std::min(end + 1, line.size()));
  }
  return out + "}";
}

double percentile(const std::vector<double>& sorted, double p) {
  if (sorted.empty()) return 0;
  const auto n = static_cast<double>(sorted.size());
  auto rank = static_cast<std::size_t>(std::ceil(p / 100.0 * n - 1e-9));
  rank = std::clamp<std::size_t>(rank, 1, sorted.size());
  return sorted[rank - 1];
}

namespace detail {

ErrorKind kind_of(const Outcome& o) {
  switch (o.why) {
    case Why::timeout:
      return ErrorKind::timed_out;
    case Why::eof:
    case Why::too_much:
      return ErrorKind::short_reply;
    case Why::mismatch:
      return ErrorKind::other;
    case Why::error:
      if (o.err == ECONNREFUSED) return ErrorKind::refused;
      if (o.err == ECONNRESET || o.err == EPIPE) return ErrorKind::reset;
      if (o.err == ETIMEDOUT) return ErrorKind::timed_out;
      return ErrorKind::other;
    default:
      throw std::logic_error("kind_of: not an error");
  }
}

namespace {
const char* stage_name(Stage s) {
  switch (s) {
    case Stage::socket: return "socket";
    case Stage::bind: return "bind";
    case Stage::connect: return "connect";
    case Stage::send: return "send";
    case Stage::recv: return "recv";
  }
  return "?";
}
const char* stage_doing(Stage s) {
  switch (s) {
    case Stage::socket:
    case Stage::bind:
    case Stage::connect: return "connecting";
    case Stage::send: return "sending";
    case Stage::recv: return "reading";
  }
  return "?";
}
}  // namespace

std::string message_of(const Outcome& o, const RunContext& run) {
  switch (o.why) {
    case Why::timeout:
      return fmt::format("no progress for {} ms while {} ({} of {} bytes); {}", run.timeout_ms, stage_doing(o.stage),
                         o.received, run.bytes, run.target);
    case Why::eof:
      return fmt::format("the server closed after {} of {} bytes; {}", o.received, run.bytes, run.target);
    case Why::too_much:
      return fmt::format("more than {} bytes ({} read); {}", run.bytes, o.received, run.target);
    case Why::mismatch:
      return fmt::format("reply byte {} differs from fanout::reply({}); {}", o.received, run.bytes, run.target);
    case Why::error:
      return fmt::format("{}: {}; {}", stage_name(o.stage), std::strerror(o.err), run.target);
    default:
      return "?";
  }
}

void Tally::add(const Outcome& o) {
  if (o.why == Why::ok) {
    latencies_ms.push_back(o.latency_ms);
    return;
  }
  if (o.why == Why::none) return;  // unfinished: counted at the end
  const auto k = static_cast<std::size_t>(kind_of(o));
  if (errors[k]++ == 0) first_error[k] = message_of(o, run);
}

ClientReport Tally::report(double wall_s, std::int64_t total) && {
  ClientReport r;
  r.bytes = run.bytes;
  r.ok = static_cast<std::int64_t>(latencies_ms.size());
  r.wall_s = wall_s;
  r.rps = wall_s > 0 ? static_cast<double>(r.ok) / wall_s : 0;
  r.errors = errors;
  r.first_error = std::move(first_error);
  r.unfinished = total - r.ok - r.error_count();
  std::vector<double> sorted = latencies_ms;
  std::sort(sorted.begin(), sorted.end());
  r.p50_ms = percentile(sorted, 50);
  r.p90_ms = percentile(sorted, 90);
  r.p99_ms = percentile(sorted, 99);
  r.max_ms = sorted.empty() ? 0 : sorted.back();
  r.latencies_ms = std::move(latencies_ms);
  return r;
}

Target resolve_target(const ClientOptions& options) {
  Target t;
  const auto found = resolve(options.host, static_cast<std::uint16_t>(options.port));
  t.server = found.front().address;
  t.family = found.front().family;
  int n = options.sources == 0 ? kDefaultSources : options.sources;
  if (t.family != Family::ipv4) {
    if (options.sources > 1)
      throw std::invalid_argument(fmt::format("sources: {} source addresses need an IPv4 server, not {}",
                                              options.sources, t.server.str()));
    n = 1;
  }
  for (int i = 0; n > 1 && i < n; ++i) t.sources.push_back(Address::ip(fmt::format("127.0.0.{}", i + 1), 0));
  return t;
}

void validate(const ClientOptions& o) {
  auto need = [](bool ok, const char* what) {
    if (!ok) throw std::invalid_argument(std::string("fanout client: ") + what);
  };
  need(o.port >= 1 && o.port <= 65535, "port must be in [1, 65535]");
  need(o.bytes >= 1 && o.bytes <= kLargestMaxBytes, "bytes must be in [1, kLargestMaxBytes]");
  need(o.timeout.count() >= 1, "timeout must be at least 1 ms");
  need(o.cap.count() >= 1, "cap must be at least 1 ms");
  need(o.sources >= 0 && o.sources <= kMaxSources, "sources must be in [0, 250]");
  if (o.children > 0) {
    need(o.loops >= 1, "loops must be at least 1");
    need(static_cast<std::int64_t>(o.children) * o.loops <= kMaxForkedRequests,
         "children * loops must be at most 1,000,000");
  } else {
    need(o.clients >= 1 && o.requests >= 1, "clients and requests must be at least 1");
    need(static_cast<std::int64_t>(o.clients) * o.requests <= kMaxRequests,
         "clients * requests must be at most 10,000,000");
  }
}

int open_socket(const Target& target, std::int64_t index, bool nonblocking, Outcome& out) {
  const int flags = SOCK_STREAM | SOCK_CLOEXEC | (nonblocking ? SOCK_NONBLOCK : 0);
  const int fd = ::socket(static_cast<int>(target.family), flags, 0);
  if (fd < 0) {
    out = {.why = Why::error, .stage = Stage::socket, .err = errno};
    return -1;
  }
  if (!target.sources.empty()) {
    const Address& source = target.sources[static_cast<std::size_t>(index % static_cast<std::int64_t>(target.sources.size()))];
    const int one = 1;
    if (::setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one) < 0 ||
        ::bind(fd, source.data(), source.size()) < 0) {
      out = {.why = Why::error, .stage = Stage::bind, .err = errno};
      ::close(fd);
      return -1;
    }
  }
  return fd;
}

}  // namespace detail

// ---------------------------------------------------------------- the epoll driver

namespace {

using namespace detail;
using Clock = std::chrono::steady_clock;

double ms_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

class EpollDriver {
 public:
  EpollDriver(const ClientOptions& options, Target target, int max_open)
      : options_(options),
        target_(std::move(target)),
        request_(fanout::request(options.bytes)),
        expected_(fanout::reply(options.bytes)),
        max_open_(max_open),
        slots_(static_cast<std::size_t>(options.clients)),
        epoll_(check(::epoll_create1(EPOLL_CLOEXEC), "epoll_create1")),
        buffer_(std::size_t{1} << 16) {
    for (int i = 0; i < options.clients; ++i) ready_.push_back(i);
  }

  // Runs every request; returns the wall time.
  double run(Tally& tally) {
    tally_ = &tally;
    const auto start = Clock::now();
    start_ = start;
    cap_end_ = start + options_.cap;
    bool capped = false;
    std::vector<epoll_event> events(1024);
    fill();
    // Until every request has ended: open ones, and those still to start
    // (fill() starts kStartBatch a turn; if every one of a batch failed at
    // once, say socket() out of descriptors, none is open and more wait).
    while (open_ > 0 || !ready_.empty()) {
      const auto now = Clock::now();
      if (now >= cap_end_) {
        capped = true;
        abandon_all();
        break;
      }
      auto until = cap_end_;
      if (oldest_ >= 0) until = std::min(until, slots_[static_cast<std::size_t>(oldest_)].last + options_.timeout);
      if (open_ < max_open_ && !ready_.empty()) until = now;  // more to start: only look at what is ready
      const auto wait_ms = std::chrono::ceil<std::chrono::milliseconds>(until - now).count();
      const int n = ::epoll_wait(epoll_.get(), events.data(), static_cast<int>(events.size()),
                                 static_cast<int>(std::clamp<long long>(wait_ms, 0, 1'000'000)));
      if (n < 0) {
        if (errno == EINTR) continue;
        throw_errno("epoll_wait");
      }
      for (int i = 0; i < n; ++i) on_event(events[static_cast<std::size_t>(i)]);
      expire(Clock::now());
      fill();
    }
    // Every request ended: the last one's end; else the cap stopped the run.
    const auto end = ready_.empty() && !capped ? last_end_ : cap_end_;
    return std::chrono::duration<double>(end - start).count();
  }

  [[nodiscard]] int most_open() const { return most_open_; }
  [[nodiscard]] double open_s() const { return open_s_; }

 private:
  struct Slot {
    int fd = -1;
    std::uint32_t generation = 0;
    int done = 0;  // requests of this client that ended
    Stage stage = Stage::connect;
    int received = 0;
    std::size_t sent = 0;
    Clock::time_point start, last;
    int prev = -1, next = -1;  // the progress list, oldest first
    bool linked = false;
  };

  // Starts requests while descriptors and clients are ready and the cap
  // allows, kStartBatch at most: then the loop looks at what is ready, so
  // the first connections send their requests while the later ones are
  // still being opened. Opening all C first would hold every request back
  // until the last connect (some 25 ms at C = 1,000 here), adding that to
  // every latency and to the wall time.
  static constexpr int kStartBatch = 16;
  void fill() {
    for (int started = 0; started < kStartBatch && open_ < max_open_ && !ready_.empty(); ++started) {
      const auto now = Clock::now();
      if (now >= cap_end_) return;
      const int i = ready_.front();
      ready_.pop_front();
      start(i, now);
    }
  }

  void start(int i, Clock::time_point now) {
    Slot& s = slots_[static_cast<std::size_t>(i)];
    Outcome out;
    s.fd = open_socket(target_, next_index_++, true, out);
    if (s.fd < 0) return ended(i, out, now, false);
    ++open_;
    most_open_ = std::max(most_open_, open_);
    s.stage = Stage::connect;
    s.received = 0;
    s.sent = 0;
    s.start = now;
    ++s.generation;
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLOUT | EPOLLET;
    ev.data.u64 = (static_cast<std::uint64_t>(s.generation) << 32) | static_cast<std::uint32_t>(i);
    if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, s.fd, &ev) < 0) throw_errno("epoll_ctl");
    touch(i, Clock::now());
    if (::connect(s.fd, target_.server.data(), target_.server.size()) == 0) return connected(i, Clock::now());
    if (errno != EINPROGRESS) return ended(i, {.why = Why::error, .stage = Stage::connect, .err = errno}, Clock::now());
  }

  void on_event(const epoll_event& ev) {
    const auto i = static_cast<int>(ev.data.u64 & 0xffffffffU);
    Slot& s = slots_[static_cast<std::size_t>(i)];
    if (s.fd < 0 || s.generation != static_cast<std::uint32_t>(ev.data.u64 >> 32)) return;  // ended meanwhile
    if (s.stage == Stage::connect) {
      if ((ev.events & (EPOLLERR | EPOLLHUP)) != 0) {
        int err = 0;
        socklen_t len = sizeof err;
        if (::getsockopt(s.fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0) err = errno;
        return ended(i, {.why = Why::error, .stage = Stage::connect, .err = err != 0 ? err : ECONNRESET}, Clock::now());
      }
      if ((ev.events & EPOLLOUT) == 0) return;
      return connected(i, Clock::now());
    }
    if (s.stage == Stage::send && (ev.events & EPOLLOUT) != 0) return send_request(i);
    if (s.stage == Stage::recv) read_reply(i);
  }

  void connected(int i, Clock::time_point now) {
    touch(i, now);
    if (slots_[static_cast<std::size_t>(i)].done == 0 && ++first_connected_ == max_open_)
      open_s_ = std::chrono::duration<double>(now - start_).count();
    send_request(i);
  }

  void send_request(int i) {
    Slot& s = slots_[static_cast<std::size_t>(i)];
    s.stage = Stage::send;
    while (s.sent < request_.size()) {
      const ssize_t n = ::send(s.fd, request_.data() + s.sent, request_.size() - s.sent, MSG_NOSIGNAL);
      if (n < 0) {
        if (errno == EINTR) continue;
        if (errno == EAGAIN) return;  // the next EPOLLOUT
        return ended(i, {.why = Why::error, .stage = Stage::send, .err = errno}, Clock::now());
      }
      s.sent += static_cast<std::size_t>(n);
    }
    s.stage = Stage::recv;
    read_reply(i);  // edge-triggered: whatever is already there gives no new event
  }

  void read_reply(int i) {
    Slot& s = slots_[static_cast<std::size_t>(i)];
    const int want = options_.bytes;
    for (;;) {
      const ssize_t n = ::recv(s.fd, buffer_.data(), buffer_.size(), 0);
      const auto now = Clock::now();
      if (n < 0) {
        if (errno == EINTR) continue;
        if (errno == EAGAIN) return;
        return ended(i, {.why = Why::error, .stage = Stage::recv, .err = errno, .received = s.received}, now);
      }
      if (n == 0) return ended(i, {.why = Why::eof, .stage = Stage::recv, .received = s.received}, now);
      const auto got = static_cast<std::size_t>(n);
      const auto mine = std::min<std::size_t>(got, static_cast<std::size_t>(want - s.received));
      if (std::memcmp(buffer_.data(), expected_.data() + s.received, mine) != 0) {
        const auto diff = std::mismatch(buffer_.data(), buffer_.data() + mine, expected_.data() + s.received).first;
        const auto at = s.received + static_cast<int>(diff - buffer_.data());
        return ended(i, {.why = Why::mismatch, .stage = Stage::recv, .received = at}, now);
      }
      s.received += static_cast<int>(got > mine ? got : mine);
      if (got > mine) return ended(i, {.why = Why::too_much, .stage = Stage::recv, .received = s.received}, now);
      if (s.received == want)
        return ended(i, {.why = Why::ok, .stage = Stage::recv, .received = s.received, .latency_ms = ms_between(s.start, now)},
                     now);
      touch(i, now);
    }
  }

  // The request of slot i ended with `out`: count it, close, queue the client's next one.
  void ended(int i, Outcome out, Clock::time_point now, bool was_open = true) {
    Slot& s = slots_[static_cast<std::size_t>(i)];
    tally_->add(out);
    last_end_ = now;
    if (was_open) close_slot(i);
    if (++s.done < options_.requests) ready_.push_back(i);
  }

  void close_slot(int i) {
    Slot& s = slots_[static_cast<std::size_t>(i)];
    unlink(i);
    ::close(s.fd);  // also leaves the epoll set
    s.fd = -1;
    --open_;
  }

  void expire(Clock::time_point now) {
    while (oldest_ >= 0) {
      Slot& s = slots_[static_cast<std::size_t>(oldest_)];
      if (s.last + options_.timeout > now) return;
      ended(oldest_, {.why = Why::timeout, .stage = s.stage, .received = s.received}, now);
    }
  }

  // At the cap: every open request is abandoned (counted unfinished).
  void abandon_all() {
    while (oldest_ >= 0) close_slot(oldest_);
  }

  // The progress list: touch() moves a slot to the end (the most recent).
  void touch(int i, Clock::time_point now) {
    unlink(i);
    Slot& s = slots_[static_cast<std::size_t>(i)];
    s.last = now;
    s.prev = newest_;
    s.next = -1;
    if (newest_ >= 0) slots_[static_cast<std::size_t>(newest_)].next = i;
    newest_ = i;
    if (oldest_ < 0) oldest_ = i;
    s.linked = true;
  }
  void unlink(int i) {
    Slot& s = slots_[static_cast<std::size_t>(i)];
    if (!s.linked) return;
    if (s.prev >= 0) slots_[static_cast<std::size_t>(s.prev)].next = s.next; else oldest_ = s.next;
    if (s.next >= 0) slots_[static_cast<std::size_t>(s.next)].prev = s.prev; else newest_ = s.prev;
    s.prev = s.next = -1;
    s.linked = false;
  }

  const ClientOptions& options_;
  Target target_;
  std::string request_;
  std::string_view expected_;
  int max_open_;
  std::vector<Slot> slots_;
  unique_fd epoll_;
  std::vector<char> buffer_;
  std::deque<int> ready_;  // clients whose next request waits to start
  Tally* tally_ = nullptr;
  Clock::time_point start_, cap_end_, last_end_;
  int first_connected_ = 0;  // first requests connected
  double open_s_ = 0;
  std::int64_t next_index_ = 0;  // requests started: picks the source address
  int open_ = 0;
  int most_open_ = 0;
  int oldest_ = -1, newest_ = -1;
};

}  // namespace

ClientReport run_clients(const ClientOptions& options) {
  validate(options);
  RunContext run{.bytes = options.bytes, .timeout_ms = static_cast<int>(options.timeout.count())};
  Target target = resolve_target(options);
  run.target = target.server.str();
  const int fd_limit = raise_fd_limit();
  const int sources = target.sources.empty() ? 1 : static_cast<int>(target.sources.size());
  if (options.children > 0) {
    ClientReport r = run_forked(options, target, run);
    r.fd_limit = fd_limit;
    r.sources = sources;
    return r;
  }

  int max_open = options.clients;
  std::vector<std::string> notes;
  if (options.clients + kDescriptorMargin > fd_limit) {
    max_open = std::max(1, fd_limit - kDescriptorMargin);
    notes.push_back(fmt::format("only {} of the {} clients can be connected at once: the descriptor limit is {} "
                                "(the hard limit of RLIMIT_NOFILE; {} are kept for the rest); the others wait for a "
                                "free descriptor",
                                max_open, options.clients, fd_limit, kDescriptorMargin));
  }
  reserve_fd_table(max_open + kDescriptorMargin);  // no table growth mid-run (fd.hpp says why)
  Tally tally{.run = run};
  tally.latencies_ms.reserve(static_cast<std::size_t>(options.clients) * static_cast<std::size_t>(options.requests));
  EpollDriver driver(options, std::move(target), max_open);
  const double wall = driver.run(tally);
  ClientReport r = std::move(tally).report(wall, static_cast<std::int64_t>(options.clients) * options.requests);
  r.clients = options.clients;
  r.requests = options.requests;
  r.fd_limit = fd_limit;
  r.max_open = driver.most_open();
  r.open_s = driver.open_s();
  r.sources = sources;
  r.notes = std::move(notes);
  return r;
}

}  // namespace conclab::fanout
