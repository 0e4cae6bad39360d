// socket.hpp — Python's socket module in C++: RAII sockets, addresses that
// print themselves, getaddrinfo loops, timeouts that are an exception of
// their own.
//
//   auto server = conclab::create_server("127.0.0.1", 9999);   // port 0: any free port
//   fmt::print("listening on {}\n", server.address());          // 127.0.0.1:9999
//   auto [conn, peer] = server.accept();
//   std::string data = conn.recv(1024);                         // "" when the peer closed
//   conn.send_all(data);
//
//   auto client = conclab::create_connection("localhost", 9999, std::chrono::seconds(5));
//
// What conclab does that Python's socket module does not (or not by default):
// - every descriptor is close-on-exec and owned by one Socket (closed by its
//   destructor, moved, never copied);
// - SIGPIPE never kills the program: sends use MSG_NOSIGNAL, and a peer that
//   reset the connection is an exception (EPIPE/ECONNRESET) like any other;
// - every failed call throws SocketError "<call>: <strerror>; <address>",
//   so `error: connect: Connection refused; 127.0.0.1:9999` says where;
// - a datagram larger than the buffer given to recvfrom() is reported as
//   truncated (Python silently cuts it);
// - a blocking call wakes up on SIGINT/SIGTERM in every thread once
//   stop_on_signals() is installed (signals.hpp), instead of only in the
//   main thread.
// EINTR is retried (PEP 475), with the time already spent taken off a timeout.
#pragma once

#include <netdb.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "conclab/error.hpp"
#include "conclab/fd.hpp"

namespace conclab {

// ---------------------------------------------------------------- errors

// A failed socket call: std::system_error whose what() is
// "<call>: <strerror>" or "<call>: <strerror>; <detail>" (detail: the address).
class SocketError : public std::system_error {
 public:
  SocketError(int err, const std::string& call, const std::string& detail = "");
  [[nodiscard]] const char* what() const noexcept override { return message_.c_str(); }

 private:
  std::string message_;
};

// A call on a socket with a timeout did not complete in time (Python's
// socket.timeout / TimeoutError). Deliberately not a SocketError, so that a
// `catch (const conclab::TimeoutError&)` placed first tells the two apart.
// The same class as a Pool's AsyncResult::get(timeout) throws.
// (Declared in error.hpp.)

// getaddrinfo() failed (Python's socket.gaierror): the resolver's message,
// e.g. "getaddrinfo: Name or service not known; no-such-host.invalid port 80".
class ResolveError : public std::runtime_error {
 public:
  ResolveError(int gai_code, const std::string& host, const std::string& service);
  [[nodiscard]] int code() const noexcept { return code_; }

 private:
  int code_;
};

// recv_exact()/read_exact() saw the peer close before n bytes arrived, or a
// line longer than the limit was read.
class ProtocolError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// LineReader::readline() saw `max_length` bytes without an end of line (a
// server answers 431 or "line too long"; a peer that closed mid-line is a
// plain ProtocolError).
class LineTooLong : public ProtocolError {
 public:
  using ProtocolError::ProtocolError;
};

// ---------------------------------------------------------------- addresses

enum class Family : int { unspec = AF_UNSPEC, ipv4 = AF_INET, ipv6 = AF_INET6, unix_path = AF_UNIX };
enum class Type : int { stream = SOCK_STREAM, datagram = SOCK_DGRAM };

// An IPv4, IPv6 or Unix-domain address. Prints as "127.0.0.1:9999",
// "[::1]:9999" or the Unix path ("@name" for an abstract one).
class Address {
 public:
  Address() = default;  // empty: family() == Family::unspec
  Address(const sockaddr* sa, socklen_t len);

  // A numeric IPv4 or IPv6 address (no resolving): "127.0.0.1", "::1".
  // Throws std::invalid_argument for anything else.
  static Address ip(const std::string& numeric_host, std::uint16_t port);
  static Address unix_path(const std::string& path);

  [[nodiscard]] Family family() const noexcept;
  [[nodiscard]] std::string host() const;          // numeric IP or the Unix path
  [[nodiscard]] std::uint16_t port() const noexcept;  // 0 for a Unix address
  [[nodiscard]] std::string str() const;

  [[nodiscard]] const sockaddr* data() const noexcept { return reinterpret_cast<const sockaddr*>(&storage_); }
  [[nodiscard]] socklen_t size() const noexcept { return size_; }

  friend bool operator==(const Address& a, const Address& b) noexcept;

 private:
  sockaddr_storage storage_{};
  socklen_t size_ = 0;
};

// One result of resolve(): what socket() and connect()/bind() need.
struct AddrInfo {
  Family family;
  Type type;
  int protocol;
  Address address;
};

// getaddrinfo(host, port) for `type`, in the order the resolver gives.
// `passive` (AI_PASSIVE) resolves for bind(): an empty host is then the
// wildcard address. Throws ResolveError.
std::vector<AddrInfo> resolve(const std::string& host, std::uint16_t port, Type type = Type::stream,
                              bool passive = false, Family family = Family::unspec);

// ---------------------------------------------------------------- sockets

using Timeout = std::optional<std::chrono::nanoseconds>;  // nullopt: block for ever

class Socket;

struct Accepted;
struct Datagram;

class Socket {
 public:
  Socket() noexcept = default;  // no descriptor yet (as after close())
  Socket(Family family, Type type, int protocol = 0);
  // Takes ownership of a socket descriptor (e.g. one passed by a parent).
  explicit Socket(unique_fd fd);

  Socket(Socket&&) noexcept = default;
  Socket& operator=(Socket&&) noexcept = default;
  Socket(const Socket&) = delete;
  Socket& operator=(const Socket&) = delete;
  ~Socket() = default;

  [[nodiscard]] int fileno() const noexcept { return fd_.get(); }
  explicit operator bool() const noexcept { return static_cast<bool>(fd_); }
  [[nodiscard]] Family family() const noexcept { return family_; }
  [[nodiscard]] Type type() const noexcept { return type_; }

  void bind(const Address& address);
  void listen(int backlog = SOMAXCONN);
  // accept(): the next connection and its peer. Out of descriptors (EMFILE),
  // it waits for one to be freed (retrying every 50 ms) instead of throwing:
  // a server under a descriptor limit slows down but does not end.
  Accepted accept();
  // One accept attempt, for event loops (the listener is non-blocking): the
  // connection, or nullopt when none is waiting. Out of descriptors or
  // memory (EMFILE, ENFILE, ENOBUFS, ENOMEM) it also returns nullopt, with
  // the errno value in *out_of_resources (0 otherwise), and nothing thrown:
  // the connection stays in the backlog and the caller decides how long to
  // back off. Other errors throw SocketError.
  std::optional<Accepted> try_accept(int* out_of_resources = nullptr);
  void connect(const Address& address);
  // connect() that returns the errno value instead of throwing (0: connected).
  int connect_ex(const Address& address);

  // send(): one write, which may take only part of `data` (returns how much):
  // with a timeout, or once stop_on_signals() is installed, it takes what fits
  // in the socket's buffer when there is room (waiting only while there is
  // none), where a plain blocking send() on Linux usually takes all of it.
  std::size_t send(std::string_view data);
  std::size_t send(std::span<const std::byte> data);
  // send_all(): loops until every byte is written (Python's sendall). With a
  // timeout, the timeout bounds the whole call, as in Python 3.5+.
  void send_all(std::string_view data);
  void send_all(std::span<const std::byte> data);

  // recv(): at most `max` bytes, whatever arrived; "" means the peer closed.
  std::string recv(std::size_t max);
  std::size_t recv_into(std::span<std::byte> buffer);
  // recv_exact(): exactly n bytes; ProtocolError if the peer closes first.
  std::string recv_exact(std::size_t n);

  std::size_t sendto(std::string_view data, const Address& to);
  // recvfrom(): one datagram. `truncated` (and full_size) tell when it was
  // longer than `max` and the rest was discarded by the kernel.
  Datagram recvfrom(std::size_t max);

  // Timeouts and blocking, as Python: settimeout(nullopt) blocks for ever,
  // settimeout(0) is non-blocking (an operation that would wait throws
  // SocketError with EAGAIN, Python's BlockingIOError), settimeout(t > 0)
  // throws TimeoutError after t. setblocking(b) is settimeout(b ? nullopt : 0).
  void settimeout(Timeout timeout);
  template <class Rep, class Period>
  void settimeout(std::chrono::duration<Rep, Period> timeout) {
    settimeout(Timeout(std::chrono::duration_cast<std::chrono::nanoseconds>(timeout)));
  }
  [[nodiscard]] Timeout gettimeout() const noexcept { return timeout_; }
  void setblocking(bool blocking);

  void setsockopt(int level, int option, int value);
  [[nodiscard]] int getsockopt(int level, int option) const;

  [[nodiscard]] Address getsockname() const;
  [[nodiscard]] Address getpeername() const;
  // The bound address: getsockname(), with the port a port-0 bind picked.
  [[nodiscard]] Address address() const { return getsockname(); }

  // shutdown(SHUT_WR) tells the peer "no more data" while still reading.
  void shutdown(int how);
  void close() noexcept { fd_.reset(); }
  [[nodiscard]] int release() noexcept { return fd_.release(); }

 private:
  enum class Wait { read, write };
  // Waits until the descriptor is ready for `what` or the deadline passes
  // (throws TimeoutError naming `call`), or a stop signal arrives (throws
  // Interrupted).
  void wait_ready(Wait what, const char* call, std::optional<std::chrono::steady_clock::time_point> deadline) const;
  [[nodiscard]] std::optional<std::chrono::steady_clock::time_point> deadline() const;
  // accept() out of descriptors: 50 ms (or up to the deadline), awake to a stop signal.
  void wait_for_resources(std::optional<std::chrono::steady_clock::time_point> until) const;
  [[nodiscard]] int io_flags() const noexcept;
  [[nodiscard]] std::string where() const;  // the peer or the local address, for messages

  unique_fd fd_;
  Family family_ = Family::unspec;
  Type type_ = Type::stream;
  Timeout timeout_;
  bool listening_ = false;
  Address peer_;  // who it is connected to: error messages still name it after a reset
};

struct Accepted {
  Socket conn;
  Address peer;
};

struct Datagram {
  std::string data;
  Address peer;
  bool truncated = false;
  std::size_t full_size = 0;  // the datagram's real length
};

// The seed 001 loop for a server: resolve(host, port, passive), then for each
// address try socket, SO_REUSEADDR, bind and (for a stream) listen; the first
// that works is returned, else the last error is thrown. Port 0 lets the
// kernel pick a free port: address() reports it. A "" host listens on every
// address.
Socket create_server(const std::string& host, std::uint16_t port, Type type = Type::stream, int backlog = SOMAXCONN);

// The seed 001 loop for a client: for each address of resolve(host, port),
// try to connect within `timeout`; the first that connects wins; if none
// does, the last error is thrown, naming every address tried. The returned
// socket keeps `timeout` (as Python's create_connection does).
Socket create_connection(const std::string& host, std::uint16_t port, Timeout timeout = std::nullopt);
template <class Rep, class Period>
Socket create_connection(const std::string& host, std::uint16_t port, std::chrono::duration<Rep, Period> timeout) {
  return create_connection(host, port, Timeout(std::chrono::duration_cast<std::chrono::nanoseconds>(timeout)));
}

namespace detail {
// create_connection()'s loop over addresses already resolved, tried in the
// order given (a test gives its own list: a closed port, an address whose
// socket() fails, then one that listens). Throws std::invalid_argument for
// an empty list.
Socket connect_first(const std::vector<AddrInfo>& infos, Timeout timeout);
}  // namespace detail

// A listening Unix-domain stream socket at `path` (an existing socket file is
// refused, not silently replaced), and a client connected to one.
Socket create_unix_server(const std::string& path, int backlog = SOMAXCONN);
Socket create_unix_connection(const std::string& path, Timeout timeout = std::nullopt);

// Two connected Unix-domain sockets (Python's socket.socketpair()).
std::pair<Socket, Socket> socketpair(Type type = Type::stream);

// ---------------------------------------------------------------- reading lines

// A buffered reader over a stream socket (Python's sock.makefile("rb")): the
// bytes read past a line stay for the next call, so a line-based header
// followed by raw bytes (an upload) reads correctly.
class LineReader {
 public:
  explicit LineReader(Socket& socket, std::size_t chunk = 4096) : socket_(&socket), chunk_(chunk) {}

  // The next line without its "\n" (and without a "\r" before it), or
  // nullopt when the peer closed before sending anything more. Throws
  // LineTooLong when `max_length` bytes pass without a newline, ProtocolError
  // when the peer closes in the middle of a line.
  std::optional<std::string> readline(std::size_t max_length);
  // Exactly n bytes (buffered ones first); ProtocolError if the peer closes first.
  std::string read_exact(std::size_t n);
  // What is buffered, else one recv() of at most `max`; "" when the peer closed.
  std::string read_some(std::size_t max);
  [[nodiscard]] std::size_t buffered() const noexcept { return buffer_.size() - start_; }

 private:
  bool fill();  // one recv() into the buffer; false at end of stream

  Socket* socket_;
  std::size_t chunk_;
  std::string buffer_;
  std::size_t start_ = 0;
};

}  // namespace conclab

template <>
struct fmt::formatter<conclab::Address> : fmt::formatter<std::string_view> {
  auto format(const conclab::Address& a, format_context& ctx) const {
    return fmt::formatter<std::string_view>::format(a.str(), ctx);
  }
};
