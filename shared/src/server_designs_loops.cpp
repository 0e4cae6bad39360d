// The event-loop server designs (server_designs.hpp): select, poll, epoll
// (one thread, conclab::Selector with that back end) and epoll-threads (one
// such loop per core). Each connection is a small state machine: read the
// request line, wait (a timer, so the loop goes on serving the others),
// write the reply as far as the socket takes it (the rest when it is
// writable again), read until the client closes. Sockets are used
// non-blocking (MSG_DONTWAIT); an idle timer closes a silent client.
#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <unordered_map>

#include <fmt/format.h>

#include "conclab/selectors.hpp"
#include "conclab/signals.hpp"
#include "server_designs_common.hpp"

namespace conclab::fanout::detail {

namespace {

bool would_block(int err) { return err == EAGAIN || err == EWOULDBLOCK; }

class EventLoop {
 public:
  EventLoop(Socket& listener, const ServerOptions& options, Backend backend)
      : options_(options), selector_(backend), acceptor_(listener, selector_, nullptr) {}

  // Serves until a stop signal (Interrupted); the connections still open
  // are closed (refused) by the destructor.
  void run() {
    for (;;) {
      for (const auto& ready : selector_.select()) {
        Conn* c = ready.key.data;
        if (!c) {
          accept_some();
          continue;
        }
        auto it = conns_.find(ready.key.fd);
        if (it == conns_.end() || it->second.get() != c) continue;  // closed by an earlier event of this turn
        step(*c);
      }
    }
  }
  // After run(): the connections still open are closed; those whose reply
  // was sent count as served, the others as refused.
  void close_all() {
    for (const auto& [fd, c] : conns_) ++(c->phase == Phase::drain ? served : refused);
    conns_.clear();
  }

  long long served = 0;
  long long refused = 0;

 private:
  enum class Phase { request, sleeping, reply, drain };
  struct Conn {
    Socket sock;
    Phase phase = Phase::request;
    char line[kMaxRequestLine];
    std::size_t have = 0;
    std::string_view data;  // what is left to send
    unsigned interest = 0;  // registered for (0: not registered)
    std::uint64_t timer = 0;
  };

  void accept_some() {
    for (int i = 0; i < 64; ++i) {  // a few per turn: the open connections get their turn too
      auto accepted = acceptor_.accept();
      if (!accepted) return;  // none left (or another loop took it)
      const int fd = accepted->fileno();
      auto conn = std::make_unique<Conn>();
      conn->sock = std::move(*accepted);
      Conn& c = *conns_.emplace(fd, std::move(conn)).first->second;
      arm_idle(c);
      step(c);  // the request is often there already: no need to wait for the next turn
    }
  }

  // Does what the connection's phase allows now.
  void step(Conn& c) {
    switch (c.phase) {
      case Phase::request: return read_request(c);
      case Phase::sleeping: return;
      case Phase::reply: return write_reply(c);
      case Phase::drain: return drain(c);
    }
  }

  void read_request(Conn& c) {
    for (;;) {
      const ssize_t n = ::recv(c.sock.fileno(), c.line + c.have, sizeof c.line - c.have, MSG_DONTWAIT);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && would_block(errno)) return want(c, EVENT_READ);
      if (n <= 0) return finish(c, false);  // closed or reset before the request
      const char* newline = static_cast<const char*>(std::memchr(c.line + c.have, '\n', static_cast<std::size_t>(n)));
      c.have += static_cast<std::size_t>(n);
      if (!newline) {
        if (c.have == sizeof c.line) return finish(c, false);  // too long
        continue;
      }
      const auto count =
          parse_count(std::string_view(c.line, static_cast<std::size_t>(newline - c.line)), options_.max_bytes);
      if (!count) return finish(c, false);
      c.data = reply(*count);
      if (options_.sleep.count() > 0) {
        if (options_.blocking_sleep) {
          pause(options_.sleep);  // the lesson: every other connection waits too
        } else {
          // A timer: the loop serves the others meanwhile. Not watched while
          // it sleeps (a level-triggered close would be reported again and again).
          c.phase = Phase::sleeping;
          want(c, 0);
          selector_.cancel_timer(c.timer);
          c.timer = selector_.call_later(options_.sleep, [this, &c] {
            c.timer = 0;
            start_reply(c);
          });
          return;
        }
      }
      return start_reply(c);
    }
  }

  void start_reply(Conn& c) {
    c.phase = Phase::reply;
    arm_idle(c);
    write_reply(c);
  }

  void write_reply(Conn& c) {
    while (!c.data.empty()) {
      const ssize_t n = ::send(c.sock.fileno(), c.data.data(), c.data.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && would_block(errno)) return want(c, EVENT_WRITE);  // a partial write: the rest later
      if (n < 0) return finish(c, false);  // closed or reset mid-reply
      c.data.remove_prefix(static_cast<std::size_t>(n));
    }
    c.phase = Phase::drain;
    drain(c);
  }

  void drain(Conn& c) {
    char scratch[512];
    for (;;) {
      const ssize_t n = ::recv(c.sock.fileno(), scratch, sizeof scratch, MSG_DONTWAIT);
      if (n > 0 || (n < 0 && errno == EINTR)) continue;
      if (n < 0 && would_block(errno)) return want(c, EVENT_READ);
      return finish(c, true);  // the client closed: done
    }
  }

  // Watches the connection for `events` (0: not at all).
  void want(Conn& c, unsigned events) {
    if (events == c.interest) return;
    const int fd = c.sock.fileno();
    if (events == 0) {
      selector_.unregister(fd);
    } else if (c.interest == 0) {
      try {
        selector_.register_fd(fd, events, &c);
      } catch (const SelectorError& e) {  // select: a descriptor >= FD_SETSIZE
        if (!said_selector_) fmt::print(stderr, "fanout-server: {}; connection closed\n", e.what());
        said_selector_ = true;
        return finish(c, false);
      }
    } else {
      selector_.modify(fd, events);
    }
    c.interest = events;
  }

  void arm_idle(Conn& c) {
    selector_.cancel_timer(c.timer);
    c.timer = selector_.call_later(options_.idle, [this, &c] {
      c.timer = 0;
      finish(c, c.phase == Phase::drain);  // silent too long; after the reply it was served
    });
  }

  void finish(Conn& c, bool was_served) {
    ++(was_served ? served : refused);
    if (c.timer) selector_.cancel_timer(c.timer);
    if (c.interest) selector_.unregister(c.sock.fileno());
    conns_.erase(c.sock.fileno());  // closes it
  }

  const ServerOptions& options_;
  Selector<Conn*> selector_;  // data: the connection, nullptr for the listener
  std::unordered_map<int, std::unique_ptr<Conn>> conns_;
  LoopListener<Conn*> acceptor_;
  bool said_selector_ = false;
};

}  // namespace

Counts serve_event_loop(Socket& listener, const ServerOptions& options, Backend backend) {
  Counts counts;
  counts.workers = 1;
  {
    EventLoop loop(listener, options, backend);
    try {
      loop.run();
    } catch (const Interrupted&) {
    }
    loop.close_all();
    counts.served = loop.served;
    counts.refused = loop.refused;
  }
  counts.per_worker = {counts.served};
  return counts;
}

// One epoll loop per core, all on the one shared listener (level-triggered):
// a connection goes to whichever loop is free to accept it, and a loop that
// is busy (or blocked in a --blocking-sleep) leaves it to the others. The
// cost is a wake-up of every idle loop per connection, of which one wins
// the accept(): with one loop per core that is at most cores - 1 wasted
// wake-ups. SO_REUSEPORT would need a listener of its own per loop, bound
// before the program prints its one port, and hashes each connection to a
// loop whatever that loop is doing; EPOLLEXCLUSIVE is not in conclab's
// Selector (and does not make a busy loop give its share away either).
Counts serve_epoll_threads(Socket& listener, const ServerOptions& options) {
  const int n = options.loops > 0 ? options.loops : usable_cpus();
  std::vector<long long> served(static_cast<std::size_t>(n)), refused(static_cast<std::size_t>(n));
  run_threads(n, "loop", [&](int slot) {
    EventLoop loop(listener, options, Backend::epoll);
    try {
      loop.run();
    } catch (const Interrupted&) {
    }
    loop.close_all();
    served[static_cast<std::size_t>(slot)] = loop.served;
    refused[static_cast<std::size_t>(slot)] = loop.refused;
  });
  return pool_counts(n, served, refused);
}

}  // namespace conclab::fanout::detail
