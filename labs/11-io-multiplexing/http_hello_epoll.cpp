// http_hello_epoll.cpp — lab 08's HTTP/1.1 "Hello, World" on one epoll event loop (lab 11;
// --selector select or poll for the same loop on those).
//
// One thread serves every connection: epoll says which socket is ready, the
// loop reads what is there into that connection's buffer, answers each
// complete request (keep-alive, pipelining, --max-requests, 431/400/405...),
// and writes the answers as the socket takes them. A client that sends half
// a request, or nothing, holds nobody up: its bytes wait in its buffer.
// Idle connections are closed by a timer (call_later), not by a blocking recv.
// See also: ../08-http-hello/http_hello_threaded.cpp (a thread each), python/http_hello_epoll.py.
#include <fmt/core.h>
#include <sys/socket.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>

#include "conclab/cli.hpp"
#include "conclab/selectors.hpp"
#include "conclab/signals.hpp"
#include "conclab/socket.hpp"
#include "echo_loop.hpp"   // mux::recv_some, mux::send_some
#include "http_hello.hpp"  // lab 08: Options, read_head, response

namespace {

constexpr std::size_t kMaxOutgoing = 256 << 10;  // a pipelining client that does not read: stop reading it

struct Conn {
  conclab::Socket sock;
  conclab::Address peer;
  std::string incoming;       // received, not yet parsed
  std::string outgoing;       // answers not yet sent
  http_hello::Request req;    // the request whose body is being read
  int status = 200;           //   and its answer
  std::size_t body_left = 0;  //   bytes of its body still to read and throw away
  int answered = 0;           // answers on this connection
  bool closing = false;       // the last answer is queued: FIN once it is sent
  bool lingering = false;     // FIN sent: read and discard until the client closes (lab 08's linger_close)
  std::size_t lingered = 0;
  std::uint64_t timer = 0;  // closes the connection when it stays silent
};

// Where the head of the first request in `in` ends (after its empty line;
// empty lines before a request are skipped, as read_head does), or npos.
std::size_t head_end(std::string_view in) {
  bool started = false;
  for (std::size_t pos = 0;;) {
    const std::size_t nl = in.find('\n', pos);
    if (nl == std::string_view::npos) return nl;
    const bool empty = nl == pos || (nl == pos + 1 && in[pos] == '\r');
    pos = nl + 1;
    if (!empty)
      started = true;
    else if (started)
      return pos;
  }
}

// Lab 08's parser reads its lines from a socket (a LineReader); here the
// head is already in memory, so it goes through a socketpair. (An event-loop
// server usually parses from its buffer; this keeps one parser for both labs.)
void parse_head(std::string_view head, std::size_t limit, http_hello::Request& req) {
  auto [in, out] = conclab::socketpair();
  in.send_all(head);
  in.shutdown(SHUT_WR);
  conclab::LineReader reader(out);
  try {
    http_hello::read_head(reader, limit, req);
  } catch (const conclab::ProtocolError&) {  // cut at the limit in the middle of a line
    throw http_hello::Reject{431};
  }
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Lab 11: HTTP/1.1 Hello, World, every connection on one epoll loop."};
  conclab::NetFlags net{"localhost", 8080};
  conclab::add_net_flags(app, net, "listen on");
  http_hello::Options options;
  http_hello::add_flags(app, options);
  app.get_option("--max-header-bytes")->check(conclab::int_in_range(64, 65536));  // what a socketpair takes at once
  auto backend = conclab::Backend::epoll;  // the loop reads what is there, not until EAGAIN: level-triggered only
  conclab::add_selector_flag(app, backend, {conclab::Backend::select, conclab::Backend::poll, conclab::Backend::epoll});

  return conclab::run_main(app, argc, argv, [&] {
    conclab::stop_on_signals();
    auto listener = conclab::create_server(net.host, static_cast<std::uint16_t>(net.port));
    listener.setblocking(false);
    conclab::Selector<Conn*> selector(backend);
    fmt::print("listening on {}\n", listener.address());
    selector.register_fd(listener.fileno(), conclab::EVENT_READ, nullptr);
    std::unordered_map<int, Conn> conns;
    const auto idle = std::chrono::duration<double>(options.idle_timeout_s);
    const auto limit = static_cast<std::size_t>(options.max_header_bytes);
    int served = 0;
    int requests = 0;

    auto close_conn = [&](Conn& c) {
      selector.cancel_timer(c.timer);
      const int fd = c.sock.fileno();
      selector.unregister(fd);
      conns.erase(fd);
    };
    auto rearm_idle = [&](Conn& c, std::chrono::duration<double> after) {
      selector.cancel_timer(c.timer);
      c.timer = selector.call_later(after, [&close_conn, &c] { close_conn(c); });
    };
    auto answer = [&](Conn& c) {
      const bool keep = c.req.keep_alive && ++c.answered < options.max_requests;
      ++requests;
      c.outgoing +=
          http_hello::response(c.status, c.req.method == "HEAD", keep ? (c.req.http10 ? "keep-alive" : "") : "close");
      c.closing = !keep;
    };
    // Answers every complete request in c.incoming.
    auto handle_requests = [&](Conn& c) {
      while (!c.closing) {
        if (c.body_left > 0) {  // the body of the current request: thrown away
          const std::size_t n = std::min(c.body_left, c.incoming.size());
          c.incoming.erase(0, n);
          if ((c.body_left -= n) > 0) return;
          answer(c);
          continue;
        }
        const std::size_t end = head_end(c.incoming);
        if (end == std::string::npos && c.incoming.size() <= limit) return;  // wait for the rest of the head
        c.req = {};
        c.status = 200;
        try {
          // A head over the limit is parsed up to it, as lab 08 reads it: what comes first (a bad
          // request line: 400; a HEAD: no body in the answer) counts, then 431.
          const bool complete = end != std::string::npos && end <= limit;
          parse_head(std::string_view(c.incoming).substr(0, complete ? end : limit + 1), limit, c.req);
          if (!complete) throw http_hello::Reject{431};
          c.incoming.erase(0, end);
          c.body_left = c.req.content_length;
          if (c.req.method != "GET" && c.req.method != "HEAD") c.status = 405;
        } catch (const http_hello::Reject& reject) {
          c.status = reject.status;
          c.req.keep_alive = false;
          c.incoming.clear();
        }
        if (c.body_left == 0) answer(c);
      }
    };
    auto on_ready = [&](Conn& c, unsigned events) {
      if (events & conclab::EVENT_READ) {
        auto data = mux::recv_some(c.sock, 65536);
        if (data && data->empty()) return close_conn(c);  // the client closed
        if (data && c.lingering) {
          if ((c.lingered += data->size()) > http_hello::kLingerBytes) return close_conn(c);
        } else if (data) {
          c.incoming += *data;
          rearm_idle(c, idle);
          handle_requests(c);
        }
      }
      while (!c.outgoing.empty()) {
        const std::size_t n = mux::send_some(c.sock, c.outgoing);
        if (n == 0) break;
        c.outgoing.erase(0, n);
      }
      if (c.closing && c.outgoing.empty() && !c.lingering) {
        c.sock.shutdown(SHUT_WR);
        c.lingering = true;
        rearm_idle(c, http_hello::kLingerTime);
      }
      const bool read = c.lingering || (!c.closing && c.outgoing.size() < kMaxOutgoing);
      selector.modify(c.sock.fileno(),
                      (read ? conclab::EVENT_READ : 0u) | (c.outgoing.empty() ? 0u : conclab::EVENT_WRITE));
    };

    try {
      for (;;) {
        for (auto& [key, events] : selector.select()) {
          if (key.data != nullptr) {
            try {
              on_ready(*key.data, events);
            } catch (const conclab::SocketError&) {  // reset by the client, or some other failure of this one
              close_conn(*key.data);
            }
            continue;
          }
          auto accepted = listener.try_accept();
          if (!accepted) continue;
          ++served;
          accepted->conn.setblocking(false);
          const int fd = accepted->conn.fileno();
          Conn& c = conns[fd];
          c.sock = std::move(accepted->conn);
          c.peer = accepted->peer;
          selector.register_fd(fd, conclab::EVENT_READ, &c);
          rearm_idle(c, idle);
        }
      }
    } catch (const conclab::Interrupted&) {
    }
    fmt::print("model={} served={} requests={}\n", conclab::backend_name(backend), served, requests);
  });
}
