// echo_loop.hpp — the echo server of lab 11 as one event loop over a
// conclab::Selector, so that select_echo.cpp, poll_echo.cpp, epoll_echo.cpp
// and epoll_edge_echo.cpp differ only in the back end they hand it.
//
// The seed 003 select server, second version: every socket is non-blocking;
// the loop waits for the listener and the clients at once (read interest),
// and for the clients whose outgoing queue is not empty (write interest).
// A readable client's bytes go to its queue; a writable client's queue goes
// out as far as the kernel takes it. No client ever blocks another: an idle
// one is just not ready.
//
// Level-triggered back ends (select, poll, epoll) report a socket as long as
// it is ready, so one recv() per report is enough (the seed's recv(1024)).
// Edge-triggered epoll reports it once, when it *becomes* ready: `drain`
// reads the socket (and accepts on the listener) until EAGAIN, or the rest
// waits for an edge that may never come.
#pragma once

#include <fmt/core.h>

#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <unordered_map>

#include "conclab/cli.hpp"
#include "conclab/selectors.hpp"
#include "conclab/signals.hpp"
#include "conclab/socket.hpp"

namespace mux {

inline constexpr std::size_t kChunk = 1024;           // the seed's recv(1024)
inline constexpr std::size_t kMaxQueued = 256 << 10;  // a client that does not read: stop reading it

// One recv() on a non-blocking socket: the bytes, "" when the peer closed,
// nullopt when nothing is there (EAGAIN: Python's BlockingIOError).
inline std::optional<std::string> recv_some(conclab::Socket& s, std::size_t max) {
  try {
    return s.recv(max);
  } catch (const conclab::SocketError& e) {
    if (e.code() == std::errc::resource_unavailable_try_again) return std::nullopt;
    throw;
  }
}

// One send() on a non-blocking socket: how many bytes the kernel took (0 when its buffer is full).
inline std::size_t send_some(conclab::Socket& s, std::string_view data) {
  try {
    return s.send(data);
  } catch (const conclab::SocketError& e) {
    if (e.code() == std::errc::resource_unavailable_try_again) return 0;
    throw;
  }
}

struct Client {
  conclab::Socket conn;
  conclab::Address peer;
  std::string outgoing;  // this client's queue: received, not yet sent back
  bool eof = false;      // the client has closed its side; close ours once the queue is sent
};

struct Stats {
  int served = 0;
  std::size_t bytes = 0;
};

// Serves echo clients on `listener` until a stop signal (throws conclab::Interrupted).
inline void serve_echo(conclab::Selector<Client*>& selector, conclab::Socket& listener, bool drain, Stats& stats) {
  listener.setblocking(false);
  selector.register_fd(listener.fileno(), conclab::EVENT_READ, nullptr);  // no Client: the listener
  std::unordered_map<int, Client> clients;
  bool told_out_of_fds = false;
  bool told_too_high = false;

  auto close_client = [&](Client& c, std::string_view why) {
    if (!why.empty()) fmt::print(stderr, "connection from {} ended: {}\n", c.peer, why);
    const int fd = c.conn.fileno();
    selector.unregister(fd);  // before the descriptor is closed
    clients.erase(fd);
  };

  auto accept_clients = [&] {
    do {
      int out_of = 0;
      auto accepted = listener.try_accept(&out_of);
      if (out_of != 0) {  // EMFILE and the like: the connection waits in the backlog; do not spin on it
        if (!told_out_of_fds) fmt::print(stderr, "accept: {}; pausing accepts\n", std::strerror(out_of));
        told_out_of_fds = true;
        selector.unregister(listener.fileno());
        selector.call_later(std::chrono::milliseconds(100),
                            [&] { selector.register_fd(listener.fileno(), conclab::EVENT_READ, nullptr); });
        return;
      }
      if (!accepted) return;  // nobody else waiting
      auto& [conn, peer] = *accepted;
      fmt::print("accept {}\n", peer);
      ++stats.served;
      conn.setblocking(false);
      const int fd = conn.fileno();
      Client& c = clients.emplace(fd, Client{std::move(conn), peer, {}, false}).first->second;
      try {
        selector.register_fd(fd, conclab::EVENT_READ, &c);
      } catch (const conclab::SelectorError& e) {  // select(): a descriptor >= FD_SETSIZE; this client only
        if (!told_too_high) fmt::print(stderr, "{}; dropping such connections\n", e.what());
        told_too_high = true;
        clients.erase(fd);
      }
    } while (drain);
  };

  auto on_readable = [&](Client& c) {  // true: drained (EAGAIN) or the client closed
    do {
      auto data = recv_some(c.conn, kChunk);
      if (!data) return true;  // EAGAIN: nothing more for now
      if (data->empty()) {
        c.eof = true;
        return true;
      }
      stats.bytes += data->size();
      c.outgoing += *data;
    } while (drain && c.outgoing.size() < kMaxQueued);
    return false;
  };

  auto on_writable = [&](Client& c) {  // on every back end: until the queue is empty or the kernel's buffer full
    while (!c.outgoing.empty()) {
      const std::size_t n = send_some(c.conn, c.outgoing);
      if (n == 0) break;
      c.outgoing.erase(0, n);
    }
  };

  for (;;) {
    for (auto& [key, events] : selector.select()) {
      if (key.data == nullptr) {
        accept_clients();
        continue;
      }
      Client& c = *key.data;
      try {
        bool drained = !(events & conclab::EVENT_READ);
        do {  // edge-triggered: until EAGAIN, unless the queue stays full (read interest is dropped below)
          if (!drained) drained = on_readable(c);
          on_writable(c);
        } while (drain && !drained && c.outgoing.size() < kMaxQueued);
      } catch (const conclab::SocketError& e) {  // reset by the peer, or some other failure of this client
        close_client(c, e.code().message());
        continue;
      }
      // Read while the client's queue is short and it has not closed; write while the queue holds something.
      const unsigned want = (!c.eof && c.outgoing.size() < kMaxQueued ? conclab::EVENT_READ : 0u) |
                            (c.outgoing.empty() ? 0u : conclab::EVENT_WRITE);
      if (want == 0) {
        close_client(c, "");
      } else {
        selector.modify(c.conn.fileno(), want);
      }
    }
  }
}

// The main of every echo server of the lab: the seed's port 8002, the
// listening line, the loop, and on SIGINT/SIGTERM the summary line.
inline void run_echo_server(conclab::Selector<Client*>& selector, const conclab::NetFlags& net, bool drain) {
  conclab::stop_on_signals();
  auto listener = conclab::create_server(net.host, static_cast<std::uint16_t>(net.port));
  fmt::print("listening on {}\n", listener.address());
  Stats stats;
  try {
    serve_echo(selector, listener, drain, stats);
  } catch (const conclab::Interrupted&) {
  }
  fmt::print("model={} served={} bytes={}\n", conclab::backend_name(selector.backend()), stats.served, stats.bytes);
}

inline void add_echo_flags(CLI::App& app, conclab::NetFlags& net) {
  net = {.host = "127.0.0.1", .port = 8002};  // the seed's select server
  conclab::add_net_flags(app, net, "listen on");
}

}  // namespace mux
