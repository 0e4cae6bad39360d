// socketserver.hpp — conclab's socketserver: a server loop, a request
// handler class, and the concurrency as a template argument.
//
//   struct MyTCPHandler : conclab::BaseRequestHandler {
//     using BaseRequestHandler::BaseRequestHandler;
//     void handle() override { request.send_all(upper(request.recv(1024))); }
//   };
//   conclab::TCPServer<MyTCPHandler> server("127.0.0.1", 9999);            // one request at a time
//   conclab::ThreadingTCPServer<MyTCPHandler> server("127.0.0.1", 9999);   // a thread per request
//   server.serve_forever();                                                 // until shutdown() or Ctrl-C
//
// As in Python: a handler object is made for each request, setup(),
// handle() and finish() run in that order, and finish() runs even when
// handle() throws. An exception from a handler is reported on stderr with
// the client's address (handle_error) and the server goes on.
//
// Where conclab does better than CPython's socketserver, on purpose:
//   - shutdown() returns as soon as the loop has stopped (well under a
//     millisecond): the loop waits on a wake-up descriptor, not a 0.5 s poll
//     interval (gh-88932). shutdown() before serve_forever(), twice, or from
//     a handler on the serving thread returns at once instead of hanging.
//   - ThreadingMixIn joins each thread as it ends, so a long-running server
//     does not pile up finished threads (gh-81374); ForkingMixIn reaps each
//     child as it ends (a pidfd per child: no SIGCHLD to lose, no zombie).
//   - accept() out of descriptors (EMFILE) does not spin: the server says so
//     once, stops accepting for 50 ms and tries again; the connections wait
//     in the backlog.
//   - the backlog is SOMAXCONN, not 5, so a burst of clients is not refused.
//   - ThreadingMixIn grows the descriptor table to the soft limit (64 Ki at
//     most) at its first request: grown while threads run, each doubling
//     stalls accept() for an RCU grace period, and a burst of thousands of
//     connects overflows the backlog (fd.hpp, reserve_fd_table).
//   - UnixStreamServer removes its socket file in server_close().
//   - Ctrl-C (stop_on_signals) ends serve_forever() with Interrupted from any
//     thread, and handlers blocked in a socket call end too.
//
// ForkingMixIn's children are conclab::Process children: forked from the
// serving thread, they keep only 0, 1, 2, the connection (for UDP the
// server's socket) and pass_fds. What a handler may do in a program with
// other threads is what process.hpp says. When a stop signal ended the
// server, server_close() sends it on to the children (a SIGTERM sent to the
// parent alone would otherwise leave it waiting for a child in recv()).
//
// A class derived from a server (to override handle_error, say) should call
// server_close() in its own destructor, so that no request thread calls
// its overrides while it is being destroyed. Inside such a class the alias
// names (ThreadingTCPServer) cannot name the base: write TCPServer<H, ThreadingMixIn>.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <concepts>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "conclab/fd.hpp"
#include "conclab/process.hpp"
#include "conclab/selectors.hpp"
#include "conclab/socket.hpp"
#include "conclab/threading.hpp"

namespace conclab {

class BaseServer;

// One request as the server hands it to a handler.
struct HandlerContext {
  Socket& request;       // stream: the accepted connection; datagram: the server's socket
  std::string packet;    // datagram: the datagram received ("" for stream servers)
  Address client_address;
  BaseServer& server;
};

// Python's BaseRequestHandler. Derive, inherit the constructor, override handle().
class BaseRequestHandler {
 public:
  explicit BaseRequestHandler(HandlerContext& context)
      : request(context.request), packet(std::move(context.packet)), client_address(context.client_address),
        server(context.server) {}
  virtual ~BaseRequestHandler() = default;
  BaseRequestHandler(const BaseRequestHandler&) = delete;
  BaseRequestHandler& operator=(const BaseRequestHandler&) = delete;

  virtual void setup() {}
  virtual void handle() {}
  virtual void finish() {}

 protected:
  Socket& request;
  std::string packet;
  const Address client_address;
  BaseServer& server;
};

// Python's StreamRequestHandler: `rfile` reads lines (and the bytes after
// them), write() sends everything (wfile.write).
class StreamRequestHandler : public BaseRequestHandler {
 public:
  explicit StreamRequestHandler(HandlerContext& context) : BaseRequestHandler(context), rfile(request) {}

 protected:
  void write(std::string_view data) { request.send_all(data); }
  LineReader rfile;
};

// Python's DatagramRequestHandler: `packet` is what came, what handle()
// puts in `wfile` is sent back to the client by finish() (if anything).
class DatagramRequestHandler : public BaseRequestHandler {
 public:
  using BaseRequestHandler::BaseRequestHandler;
  void finish() override {
    if (!wfile.empty()) request.sendto(wfile, client_address);
  }

 protected:
  std::string wfile;
};

// The loop and what every server has. The concurrency (a mix-in below)
// derives from it; TCPServer and friends put a socket and a handler in.
class BaseServer {
 public:
  // Runs a handler for one request (made by the server templates below).
  using Runner = std::function<void(HandlerContext&)>;

  virtual ~BaseServer();
  BaseServer(const BaseServer&) = delete;
  BaseServer& operator=(const BaseServer&) = delete;

  // Serves requests until shutdown() (from any thread, or from a handler)
  // or a stop signal (then it throws Interrupted, after the loop has stopped).
  void serve_forever();
  // Serves one request, waiting at most `timeout` (nullopt: as long as it
  // takes); false when the time ran out (handle_timeout() was called).
  bool handle_request();
  // Python's `timeout` attribute: handle_request()'s limit.
  std::optional<std::chrono::duration<double>> timeout;

  // Asks serve_forever() to stop and waits until it has (at once when it is
  // not running, or when called from the serving thread itself).
  void shutdown();
  // Closes the listening socket; the mix-ins wait for their threads and
  // children here (block_on_close). Called by the destructor too; idempotent.
  void server_close();

  [[nodiscard]] const Address& server_address() const noexcept { return address_; }
  [[nodiscard]] int fileno() const noexcept { return socket_.fileno(); }
  [[nodiscard]] Socket& socket() noexcept { return socket_; }
  // Datagrams larger than this are cut (Python's max_packet_size, 8192).
  std::size_t max_packet_size = 8192;

 protected:
  BaseServer(Socket socket, Runner runner);

  // What the mix-ins override: run a request (inline here), tidy up after
  // each turn of the loop, wait for the rest on close.
  virtual void process_request(HandlerContext& context);
  virtual void service_actions() {}
  virtual void close_workers() {}
  // Ends every thread or child still running, whatever block_on_close says:
  // called by the server templates' destructors while the object is whole,
  // so that no worker calls into a half-destroyed server.
  virtual void end_workers() {}
  // Whether the loop should accept now (ForkingMixIn: below max_children).
  [[nodiscard]] virtual bool accepting() const { return true; }
  virtual void handle_timeout() {}
  // Prints "error handling request from <address>: <what>" on stderr.
  virtual void handle_error(const Address& client, std::exception_ptr error);

  // Runs the handler: setup, handle, finish; an exception goes to
  // handle_error (then false), except Interrupted, which is rethrown.
  bool finish_request(HandlerContext& context);
  // Threads or children still running (a datagram server's socket stays
  // open for them until the object goes).
  virtual std::size_t workers_running() { return 0; }
  // Watch another descriptor in the loop: `ready` runs when it is readable.
  void watch(int fd, std::function<void()> ready);
  void unwatch(int fd);
  // Wakes the loop (from any thread) so that it calls service_actions().
  void wake() noexcept;
  [[nodiscard]] bool is_stream() const noexcept { return socket_.type() == Type::stream; }
  void after_close(std::function<void()> action) { after_close_ = std::move(action); }

 private:
  // Takes one request off the socket and processes it; false if there was none.
  bool handle_request_noblock();
  void dispatch(HandlerContext& context);
  void out_of_resources(int err);
  void update_listening();
  void on_wake();
  // One wait of the loop: the ready descriptors; then run them (true when a
  // request was served).
  std::vector<int> wait_once(std::optional<std::chrono::nanoseconds> timeout);
  bool run_ready(const std::vector<int>& fds);

  Socket socket_;
  Address address_;
  Runner runner_;
  unique_fd wake_fd_;  // an eventfd: shutdown() and finished workers write it
  Selector<std::function<void()>> selector_;
  bool listening_ = false;  // the socket is registered with the selector
  std::optional<Selector<>::Clock::time_point> backoff_until_;  // EMFILE: not accepting until then
  bool told_out_of_resources_ = false;  // said once per run of EMFILE
  std::atomic<bool> shutdown_request_{false};
  std::mutex state_mutex_;
  std::condition_variable stopped_;
  bool serving_ = false;
  std::thread::id serving_thread_;
  bool closed_ = false;
  std::function<void()> after_close_;
};

// Synchronous: one request at a time, in the serving thread.
class Synchronous : public BaseServer {
 protected:
  using BaseServer::BaseServer;
};

// A thread per request. Finished threads are joined as they end.
class ThreadingMixIn : public BaseServer {
 public:
  // Python 3.7+: server_close() waits for the non-daemon threads when
  // block_on_close is true. A C++ thread cannot be abandoned safely, so the
  // destructor still waits for every thread, after shutting down the
  // connections of daemon threads so that one blocked in recv() ends.
  bool daemon_threads = false;
  bool block_on_close = true;
  // Threads running now.
  [[nodiscard]] std::size_t active_threads();

 protected:
  using BaseServer::BaseServer;
  ~ThreadingMixIn() override;
  void process_request(HandlerContext& context) override;
  void service_actions() override;
  void close_workers() override;
  void end_workers() override { join_all(true); }
  std::size_t workers_running() override;

 private:
  struct Worker {
    Thread thread;
    int fd = -1;  // the connection while it is open (for shutting down daemon threads' sockets)
    bool daemon = false;
  };
  void join_finished();
  void join_all(bool daemons_too);
  std::mutex mutex_;
  std::map<std::uint64_t, Worker> workers_;
  std::vector<std::uint64_t> finished_;
  std::uint64_t next_id_ = 0;
};

// A child process per request (fork), reaped as it ends.
class ForkingMixIn : public BaseServer {
 public:
  // Python's defaults: at most 40 children; server_close() waits for them.
  std::size_t max_children = 40;
  bool block_on_close = true;
  // Descriptors the children keep besides 0, 1, 2 and the request's socket.
  std::vector<int> pass_fds;
  [[nodiscard]] std::size_t active_children() const noexcept { return children_.size(); }

 protected:
  using BaseServer::BaseServer;
  ~ForkingMixIn() override;
  void process_request(HandlerContext& context) override;
  [[nodiscard]] bool accepting() const override { return children_.size() < max_children; }
  void close_workers() override;
  void end_workers() override;
  std::size_t workers_running() override;

 private:
  struct Child {
    Process process;
    unique_fd pidfd;
  };
  void reap(pid_t pid);
  std::map<pid_t, Child> children_;
};

namespace detail {
template <class Handler>
BaseServer::Runner runner_for() {
  static_assert(std::derived_from<Handler, BaseRequestHandler>,
                "a handler derives from conclab::BaseRequestHandler (or Stream/DatagramRequestHandler)");
  static_assert(std::constructible_from<Handler, HandlerContext&>,
                "a handler takes the HandlerContext: add `using BaseRequestHandler::BaseRequestHandler;`");
  return [](HandlerContext& context) {
    Handler handler(context);
    BaseRequestHandler& h = handler;
    h.setup();
    try {
      h.handle();
    } catch (...) {
      h.finish();  // Python's try/finally
      throw;
    }
    h.finish();
  };
}
Socket unix_server_socket(const std::string& path);
void remove_unix_socket(const std::string& path) noexcept;
}  // namespace detail

// A TCP server on host:port (IPv4 or IPv6; port 0: any free port, which
// server_address() then reports). MixIn: Synchronous, ThreadingMixIn, ForkingMixIn.
template <class Handler, class MixIn = Synchronous>
class TCPServer : public MixIn {
 public:
  TCPServer(const std::string& host, std::uint16_t port)
      : MixIn(create_server(host, port, Type::stream), detail::runner_for<Handler>()) {}
  ~TCPServer() override {
    this->server_close();
    this->end_workers();
  }
};

// A UDP server: each datagram is a request (HandlerContext::packet).
template <class Handler, class MixIn = Synchronous>
class UDPServer : public MixIn {
 public:
  UDPServer(const std::string& host, std::uint16_t port)
      : MixIn(create_server(host, port, Type::datagram), detail::runner_for<Handler>()) {}
  ~UDPServer() override {
    this->server_close();
    this->end_workers();
  }
};

// A Unix-domain stream server on a socket file, removed again by server_close().
template <class Handler, class MixIn = Synchronous>
class UnixStreamServer : public MixIn {
 public:
  explicit UnixStreamServer(const std::string& path)
      : MixIn(detail::unix_server_socket(path), detail::runner_for<Handler>()) {
    this->after_close([path] { detail::remove_unix_socket(path); });
  }
  ~UnixStreamServer() override {
    this->server_close();
    this->end_workers();
  }
};

template <class Handler>
using ThreadingTCPServer = TCPServer<Handler, ThreadingMixIn>;
template <class Handler>
using ForkingTCPServer = TCPServer<Handler, ForkingMixIn>;
template <class Handler>
using ThreadingUDPServer = UDPServer<Handler, ThreadingMixIn>;
template <class Handler>
using ForkingUDPServer = UDPServer<Handler, ForkingMixIn>;
template <class Handler>
using ThreadingUnixStreamServer = UnixStreamServer<Handler, ThreadingMixIn>;

}  // namespace conclab
