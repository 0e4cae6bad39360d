// socket.cpp — conclab's socket module (socket.hpp).
//
// Blocking calls: a socket without a timeout uses the plain blocking call
// (recv, send, ...), retried on EINTR. A socket with a timeout, a listening
// socket, and every socket once stop_on_signals() is installed use the
// non-blocking call (MSG_DONTWAIT, or an O_NONBLOCK descriptor for accept and
// connect) and wait in poll() for readiness, for the deadline and for the
// stop pipe: that is how a timeout and a Ctrl-C reach a thread blocked in recv.
#include "conclab/clock.hpp"
#include "conclab/socket.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <limits>

#include "conclab/signals.hpp"

namespace conclab {

using Clock = std::chrono::steady_clock;

// ---------------------------------------------------------------- errors

namespace {

std::string socket_message(int err, const std::string& call, const std::string& detail) {
  std::string message = call + ": " + std::strerror(err);
  if (!detail.empty()) message += "; " + detail;
  return message;
}

[[noreturn]] void throw_socket(const std::string& call, const std::string& detail = "", int err = errno) {
  throw SocketError(err, call, detail);
}

}  // namespace

SocketError::SocketError(int err, const std::string& call, const std::string& detail)
    : std::system_error(err, std::generic_category(), call), message_(socket_message(err, call, detail)) {}

ResolveError::ResolveError(int gai_code, const std::string& host, const std::string& service)
    : std::runtime_error(fmt::format("getaddrinfo: {}; {} port {}",
                                     gai_code == EAI_SYSTEM ? std::strerror(errno) : ::gai_strerror(gai_code),
                                     host.empty() ? "(any address)" : host, service)),
      code_(gai_code) {}

// ---------------------------------------------------------------- addresses

Address::Address(const sockaddr* sa, socklen_t len) {
  if (len > sizeof storage_) throw std::invalid_argument("Address: sockaddr larger than sockaddr_storage");
  std::memcpy(&storage_, sa, len);
  size_ = len;
}

Address Address::ip(const std::string& numeric_host, std::uint16_t port) {
  Address a;
  auto* v4 = reinterpret_cast<sockaddr_in*>(&a.storage_);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&a.storage_);
  if (::inet_pton(AF_INET, numeric_host.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(port);
    a.size_ = sizeof(sockaddr_in);
  } else if (::inet_pton(AF_INET6, numeric_host.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(port);
    a.size_ = sizeof(sockaddr_in6);
  } else {
    throw std::invalid_argument(fmt::format("not a numeric IPv4 or IPv6 address: '{}'", numeric_host));
  }
  return a;
}

Address Address::unix_path(const std::string& path) {
  Address a;
  auto* un = reinterpret_cast<sockaddr_un*>(&a.storage_);
  if (path.empty() || path.size() >= sizeof un->sun_path)
    throw std::invalid_argument(
        fmt::format("a Unix socket path is 1 to {} bytes: '{}'", sizeof un->sun_path - 1, path));
  un->sun_family = AF_UNIX;
  std::memcpy(un->sun_path, path.data(), path.size());
  if (path[0] == '@') un->sun_path[0] = '\0';  // Linux's abstract namespace, written "@name"
  a.size_ = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size() + (path[0] == '@' ? 0 : 1));
  return a;
}

Family Address::family() const noexcept {
  return size_ == 0 ? Family::unspec : static_cast<Family>(storage_.ss_family);
}

std::string Address::host() const {
  char text[INET6_ADDRSTRLEN] = {};
  switch (family()) {
    case Family::ipv4:
      ::inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(&storage_)->sin_addr, text, sizeof text);
      return text;
    case Family::ipv6:
      ::inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(&storage_)->sin6_addr, text, sizeof text);
      return text;
    case Family::unix_path: {
      const auto* un = reinterpret_cast<const sockaddr_un*>(&storage_);
      const std::size_t n = size_ > offsetof(sockaddr_un, sun_path) ? size_ - offsetof(sockaddr_un, sun_path) : 0;
      if (n == 0) return "(unnamed)";
      if (un->sun_path[0] == '\0') return "@" + std::string(un->sun_path + 1, n - 1);
      return std::string(un->sun_path, strnlen(un->sun_path, n));
    }
    default:
      return "(no address)";
  }
}

std::uint16_t Address::port() const noexcept {
  switch (family()) {
    case Family::ipv4:
      return ntohs(reinterpret_cast<const sockaddr_in*>(&storage_)->sin_port);
    case Family::ipv6:
      return ntohs(reinterpret_cast<const sockaddr_in6*>(&storage_)->sin6_port);
    default:
      return 0;
  }
}

std::string Address::str() const {
  switch (family()) {
    case Family::ipv4:
      return fmt::format("{}:{}", host(), port());
    case Family::ipv6:
      return fmt::format("[{}]:{}", host(), port());
    default:
      return host();
  }
}

bool operator==(const Address& a, const Address& b) noexcept {
  return a.size_ == b.size_ && std::memcmp(&a.storage_, &b.storage_, a.size_) == 0;
}

std::vector<AddrInfo> resolve(const std::string& host, std::uint16_t port, Type type, bool passive, Family family) {
  addrinfo hints{};
  hints.ai_family = static_cast<int>(family);
  hints.ai_socktype = static_cast<int>(type);
  hints.ai_flags = AI_NUMERICSERV | (passive ? AI_PASSIVE : 0);
  const std::string service = std::to_string(port);
  addrinfo* list = nullptr;
  int rc;
  do {
    rc = ::getaddrinfo(host.empty() ? nullptr : host.c_str(), service.c_str(), &hints, &list);
  } while (rc == EAI_SYSTEM && errno == EINTR);
  if (rc != 0) throw ResolveError(rc, host, service);
  std::vector<AddrInfo> result;
  for (const addrinfo* ai = list; ai; ai = ai->ai_next)
    result.push_back({static_cast<Family>(ai->ai_family), static_cast<Type>(ai->ai_socktype), ai->ai_protocol,
                      Address(ai->ai_addr, ai->ai_addrlen)});
  ::freeaddrinfo(list);
  return result;
}

// ---------------------------------------------------------------- sockets

namespace {

void set_nonblocking(int fd, bool on) {
  const int flags = check(::fcntl(fd, F_GETFL), "fcntl");
  const int wanted = on ? (flags | O_NONBLOCK) : (flags & ~O_NONBLOCK);
  if (wanted != flags) check(::fcntl(fd, F_SETFL, wanted), "fcntl");
}

bool would_block(int err) { return err == EAGAIN || err == EWOULDBLOCK; }

}  // namespace

Socket::Socket(Family family, Type type, int protocol) : family_(family), type_(type) {
  const int fd = ::socket(static_cast<int>(family), static_cast<int>(type) | SOCK_CLOEXEC, protocol);
  if (fd < 0) throw_socket("socket");
  fd_.reset(fd);
}

Socket::Socket(unique_fd fd) : fd_(std::move(fd)) {
  int value = 0;
  socklen_t len = sizeof value;
  if (::getsockopt(fd_.get(), SOL_SOCKET, SO_DOMAIN, &value, &len) < 0) throw_socket("getsockopt(SO_DOMAIN)");
  family_ = static_cast<Family>(value);
  len = sizeof value;
  if (::getsockopt(fd_.get(), SOL_SOCKET, SO_TYPE, &value, &len) < 0) throw_socket("getsockopt(SO_TYPE)");
  type_ = static_cast<Type>(value);
  len = sizeof value;
  if (::getsockopt(fd_.get(), SOL_SOCKET, SO_ACCEPTCONN, &value, &len) == 0 && value) {
    listening_ = true;
    set_nonblocking(fd_.get(), true);
  }
}

std::optional<Clock::time_point> Socket::deadline() const {
  if (!timeout_ || *timeout_ <= std::chrono::nanoseconds::zero()) return std::nullopt;
  return detail::deadline_after(*timeout_);  // a timeout too large for a deadline: none (never overflows)
}

int Socket::io_flags() const noexcept {
  return MSG_NOSIGNAL | ((timeout_ || stop_fd() >= 0) ? MSG_DONTWAIT : 0);
}

std::string Socket::where() const {
  if (peer_.family() != Family::unspec) return "peer " + peer_.str();
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (::getpeername(fd_.get(), reinterpret_cast<sockaddr*>(&ss), &len) == 0)
    return "peer " + Address(reinterpret_cast<sockaddr*>(&ss), len).str();
  len = sizeof ss;
  if (::getsockname(fd_.get(), reinterpret_cast<sockaddr*>(&ss), &len) == 0 && len > sizeof(sa_family_t))
    return Address(reinterpret_cast<sockaddr*>(&ss), len).str();
  return "";
}

void Socket::wait_ready(Wait what, const char* call, std::optional<Clock::time_point> until) const {
  // A non-blocking socket (settimeout(0)) never waits: Python's BlockingIOError.
  if (timeout_ && *timeout_ <= std::chrono::nanoseconds::zero()) throw_socket(call, where(), EAGAIN);
  pollfd fds[2] = {{fd_.get(), static_cast<short>(what == Wait::read ? POLLIN : POLLOUT), 0}, {stop_fd(), POLLIN, 0}};
  const nfds_t count = fds[1].fd >= 0 ? 2 : 1;
  for (;;) {
    throw_if_stopped();
    int wait_ms = -1;
    if (until) {
      const auto left = std::chrono::ceil<std::chrono::milliseconds>(*until - Clock::now()).count();
      if (left <= 0) throw TimeoutError(fmt::format("{}: timed out", call));
      wait_ms = static_cast<int>(std::min<long long>(left, std::numeric_limits<int>::max()));
    }
    const int n = ::poll(fds, count, wait_ms);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw_socket("poll");
    }
    if (count == 2 && (fds[1].revents & POLLIN)) throw_if_stopped();
    if (fds[0].revents) return;  // ready, or an error/hang-up that the call itself will report
    if (n == 0 && until && Clock::now() >= *until) throw TimeoutError(fmt::format("{}: timed out", call));
  }
}

void Socket::wait_for_resources(std::optional<Clock::time_point> until) const {
  constexpr auto kBackoff = std::chrono::milliseconds(50);
  auto wake = Clock::now() + kBackoff;
  if (until && *until < wake) wake = *until;
  pollfd stop{stop_fd(), POLLIN, 0};
  for (;;) {
    throw_if_stopped();
    const auto left = std::chrono::ceil<std::chrono::milliseconds>(wake - Clock::now()).count();
    if (left <= 0) break;
    if (::poll(&stop, stop.fd >= 0 ? 1 : 0, static_cast<int>(left)) < 0 && errno != EINTR) throw_socket("poll");
  }
  if (until && Clock::now() >= *until) throw TimeoutError("accept: timed out");
}

void Socket::bind(const Address& address) {
  if (::bind(fd_.get(), address.data(), address.size()) < 0) throw_socket("bind", address.str());
}

void Socket::listen(int backlog) {
  if (::listen(fd_.get(), backlog) < 0) throw_socket("listen", where());
  // accept() then waits in poll(), so that a timeout and a stop signal reach it.
  set_nonblocking(fd_.get(), true);
  listening_ = true;
}

std::optional<Accepted> Socket::try_accept(int* out_of_resources) {
  if (out_of_resources) *out_of_resources = 0;
  for (;;) {
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    const int fd = ::accept4(fd_.get(), reinterpret_cast<sockaddr*>(&ss), &len, SOCK_CLOEXEC);
    if (fd >= 0) {
      Accepted result{Socket(), Address(reinterpret_cast<sockaddr*>(&ss), len)};
      result.conn.fd_.reset(fd);
      result.conn.family_ = family_;
      result.conn.type_ = type_;
      result.conn.peer_ = result.peer;
      return result;  // blocking, no timeout, whatever the listener's (as Python without a default timeout)
    }
    const int err = errno;
    if (err == EINTR) {
      throw_if_stopped();
      continue;
    }
    // A connection reset before it was accepted: Linux reports it as these
    // errors of accept(); the next connection is what the caller wants.
    if (err == ECONNABORTED || err == EPROTO) continue;
    if (err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM) {
      if (out_of_resources) *out_of_resources = err;
      return std::nullopt;
    }
    if (would_block(err)) return std::nullopt;
    throw_socket("accept", where(), err);
  }
}

Accepted Socket::accept() {
  const auto until = deadline();
  for (;;) {
    int out_of_resources = 0;
    if (auto accepted = try_accept(&out_of_resources)) return std::move(*accepted);
    if (out_of_resources) {
      // Out of descriptors (or memory): the connection waits in the backlog
      // until a connection being served closes. Wait a little and try again
      // rather than end the server (Python's socketserver logs and goes on;
      // a bare accept() loop dies here).
      wait_for_resources(until);
      continue;
    }
    wait_ready(Wait::read, "accept", until);
  }
}

int Socket::connect_ex(const Address& address) {
  const bool temporary_nonblocking = !timeout_;
  // A timeout needs a non-blocking connect; so does a stop signal.
  const bool poll_for_it = timeout_ || stop_fd() >= 0;
  if (poll_for_it && temporary_nonblocking) set_nonblocking(fd_.get(), true);
  int rc = ::connect(fd_.get(), address.data(), address.size());
  int err = rc == 0 ? 0 : errno;
  const bool nonblocking = timeout_ && *timeout_ <= std::chrono::nanoseconds::zero();
  if (nonblocking) return err;  // EINPROGRESS: the caller waits for writability (Python's connect_ex)
  if (err == EINPROGRESS || err == EINTR) {
    // Connecting goes on in the kernel: wait until the socket is writable,
    // then ask how it ended (SO_ERROR). An EINTR of a blocking connect is the
    // same: retrying connect() would say EALREADY.
    try {
      if (err == EINTR && !poll_for_it) {
        throw_if_stopped();
        pollfd pfd{fd_.get(), POLLOUT, 0};
        while (::poll(&pfd, 1, -1) < 0 && errno == EINTR) throw_if_stopped();
      } else {
        wait_ready(Wait::write, "connect", deadline());
      }
    } catch (...) {
      if (poll_for_it && temporary_nonblocking) set_nonblocking(fd_.get(), false);
      throw;
    }
    err = getsockopt(SOL_SOCKET, SO_ERROR);
  }
  if (poll_for_it && temporary_nonblocking) set_nonblocking(fd_.get(), false);
  if (err == 0) peer_ = address;
  return err;
}

void Socket::connect(const Address& address) {
  if (const int err = connect_ex(address)) throw_socket("connect", address.str(), err);
}

std::size_t Socket::send(std::span<const std::byte> data) {
  const auto until = deadline();
  for (;;) {
    const ssize_t n = ::send(fd_.get(), data.data(), data.size(), io_flags());
    if (n >= 0) return static_cast<std::size_t>(n);
    if (errno == EINTR) {
      throw_if_stopped();
      continue;
    }
    if (!would_block(errno)) throw_socket("send", where());
    wait_ready(Wait::write, "send", until);
  }
}

std::size_t Socket::send(std::string_view data) { return send(std::as_bytes(std::span(data.data(), data.size()))); }

void Socket::send_all(std::span<const std::byte> data) {
  const auto until = deadline();  // one deadline for the whole call
  while (!data.empty()) {
    const ssize_t n = ::send(fd_.get(), data.data(), data.size(), io_flags());
    if (n >= 0) {
      data = data.subspan(static_cast<std::size_t>(n));
      continue;
    }
    if (errno == EINTR) {
      throw_if_stopped();
      continue;
    }
    if (!would_block(errno)) throw_socket("send_all", where());
    wait_ready(Wait::write, "send_all", until);
  }
}

void Socket::send_all(std::string_view data) { send_all(std::as_bytes(std::span(data.data(), data.size()))); }

std::size_t Socket::recv_into(std::span<std::byte> buffer) {
  const auto until = deadline();
  for (;;) {
    const ssize_t n = ::recv(fd_.get(), buffer.data(), buffer.size(), io_flags());
    if (n >= 0) return static_cast<std::size_t>(n);
    if (errno == EINTR) {
      throw_if_stopped();
      continue;
    }
    if (!would_block(errno)) throw_socket("recv", where());
    wait_ready(Wait::read, "recv", until);
  }
}

std::string Socket::recv(std::size_t max) {
  std::string data(max, '\0');
  data.resize(recv_into(std::as_writable_bytes(std::span(data.data(), data.size()))));
  return data;
}

std::string Socket::recv_exact(std::size_t n) {
  std::string data(n, '\0');
  std::size_t got = 0;
  while (got < n) {
    const std::size_t k = recv_into(std::as_writable_bytes(std::span(data.data() + got, n - got)));
    if (k == 0)
      throw ProtocolError(fmt::format("recv_exact: the peer closed the connection after {} of {} bytes", got, n));
    got += k;
  }
  return data;
}

std::size_t Socket::sendto(std::string_view data, const Address& to) {
  const auto until = deadline();
  for (;;) {
    const ssize_t n = ::sendto(fd_.get(), data.data(), data.size(), io_flags(), to.data(), to.size());
    if (n >= 0) return static_cast<std::size_t>(n);
    if (errno == EINTR) {
      throw_if_stopped();
      continue;
    }
    if (!would_block(errno)) throw_socket("sendto", to.str());
    wait_ready(Wait::write, "sendto", until);
  }
}

Datagram Socket::recvfrom(std::size_t max) {
  const auto until = deadline();
  Datagram d;
  d.data.resize(max);
  for (;;) {
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    // MSG_TRUNC: the return value is the datagram's real length, even when
    // only `max` bytes of it fit (and the rest is discarded).
    // (On a stream socket MSG_TRUNC would throw the bytes away: not there.)
    const int trunc = type_ == Type::datagram ? MSG_TRUNC : 0;
    const ssize_t n =
        ::recvfrom(fd_.get(), d.data.data(), max, io_flags() | trunc, reinterpret_cast<sockaddr*>(&ss), &len);
    if (n >= 0) {
      d.full_size = static_cast<std::size_t>(n);
      d.truncated = d.full_size > max;
      d.data.resize(std::min(d.full_size, max));
      d.peer = Address(reinterpret_cast<sockaddr*>(&ss), len);
      return d;
    }
    if (errno == EINTR) {
      throw_if_stopped();
      continue;
    }
    if (!would_block(errno)) throw_socket("recvfrom", where());
    wait_ready(Wait::read, "recvfrom", until);
  }
}

void Socket::settimeout(Timeout timeout) {
  if (timeout && *timeout < std::chrono::nanoseconds::zero())
    throw std::invalid_argument("settimeout: the timeout must be 0 or more (or none)");
  timeout_ = timeout;
  // As Python: a socket with a timeout is non-blocking underneath (so that
  // a selector or poll() on fileno() sees it so); one without blocks.
  if (!listening_) set_nonblocking(fd_.get(), timeout_.has_value());
}

void Socket::setblocking(bool blocking) {
  settimeout(blocking ? Timeout() : Timeout(std::chrono::nanoseconds::zero()));
}

void Socket::setsockopt(int level, int option, int value) {
  if (::setsockopt(fd_.get(), level, option, &value, sizeof value) < 0) throw_socket("setsockopt");
}

int Socket::getsockopt(int level, int option) const {
  int value = 0;
  socklen_t len = sizeof value;
  if (::getsockopt(fd_.get(), level, option, &value, &len) < 0) throw_socket("getsockopt");
  return value;
}

Address Socket::getsockname() const {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (::getsockname(fd_.get(), reinterpret_cast<sockaddr*>(&ss), &len) < 0) throw_socket("getsockname");
  return Address(reinterpret_cast<sockaddr*>(&ss), len);
}

Address Socket::getpeername() const {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (::getpeername(fd_.get(), reinterpret_cast<sockaddr*>(&ss), &len) < 0) throw_socket("getpeername");
  return Address(reinterpret_cast<sockaddr*>(&ss), len);
}

void Socket::shutdown(int how) {
  if (::shutdown(fd_.get(), how) < 0) throw_socket("shutdown", where());
}

// ---------------------------------------------------------------- the seed 001 loops

namespace {

std::string tried_list(const std::vector<AddrInfo>& infos) {
  std::string list;
  for (const auto& info : infos) list += (list.empty() ? "" : ", ") + info.address.str();
  return list;
}

}  // namespace

Socket create_server(const std::string& host, std::uint16_t port, Type type, int backlog) {
  const auto infos = resolve(host, port, type, /*passive=*/true);
  std::exception_ptr last;
  for (const auto& info : infos) {
    try {
      Socket s(info.family, info.type, info.protocol);
      // SO_REUSEADDR lets a restarted TCP server bind while its old
      // connections sit in TIME_WAIT. Not for UDP: there, on Linux, it lets a
      // second server bind the same port and steal its datagrams.
      if (type == Type::stream) s.setsockopt(SOL_SOCKET, SO_REUSEADDR, 1);
      s.bind(info.address);
      if (type == Type::stream) s.listen(backlog);
      return s;
    } catch (const SocketError&) {
      last = std::current_exception();
    }
  }
  std::rethrow_exception(last);  // resolve() never returns an empty list
}

Socket create_connection(const std::string& host, std::uint16_t port, Timeout timeout) {
  return detail::connect_first(resolve(host, port, Type::stream), timeout);
}

namespace detail {

Socket connect_first(const std::vector<AddrInfo>& infos, Timeout timeout) {
  if (infos.empty()) throw std::invalid_argument("create_connection: no address to try");
  int last_err = 0;
  const char* last_call = "connect";
  std::exception_ptr last_timeout;
  for (const auto& info : infos) {
    // Everything for one address inside the try, as Python's create_connection:
    // a socket() that fails (a family or protocol this kernel lacks) is that
    // address's error, and the next address is tried.
    const char* call = "socket";
    try {
      Socket s(info.family, info.type, info.protocol);
      call = "settimeout";
      s.settimeout(timeout);
      call = "connect";
      const int err = s.connect_ex(info.address);
      if (err == 0) return s;
      last_err = err;
      last_call = call;
    } catch (const TimeoutError&) {
      last_timeout = std::current_exception();
    } catch (const std::system_error& e) {  // SocketError, or fcntl's error from settimeout
      last_err = e.code().value();
      last_call = call;
    }
  }
  if (last_err == 0 && last_timeout) std::rethrow_exception(last_timeout);
  throw SocketError(last_err, last_call, infos.size() == 1 ? infos[0].address.str() : "tried " + tried_list(infos));
}

}  // namespace detail

Socket create_unix_server(const std::string& path, int backlog) {
  Socket s(Family::unix_path, Type::stream);
  s.bind(Address::unix_path(path));
  s.listen(backlog);
  return s;
}

Socket create_unix_connection(const std::string& path, Timeout timeout) {
  Socket s(Family::unix_path, Type::stream);
  s.settimeout(timeout);
  s.connect(Address::unix_path(path));
  return s;
}

std::pair<Socket, Socket> socketpair(Type type) {
  int fds[2];
  if (::socketpair(AF_UNIX, static_cast<int>(type) | SOCK_CLOEXEC, 0, fds) < 0) throw_socket("socketpair");
  unique_fd a(fds[0]), b(fds[1]);
  return {Socket(std::move(a)), Socket(std::move(b))};
}

// ---------------------------------------------------------------- LineReader

bool LineReader::fill() {
  if (start_ > 0) {  // drop what was consumed, so the buffer holds at most one line or chunk
    buffer_.erase(0, start_);
    start_ = 0;
  }
  const std::size_t old = buffer_.size();
  buffer_.resize(old + chunk_);
  const std::size_t n = socket_->recv_into(std::as_writable_bytes(std::span(buffer_.data() + old, chunk_)));
  buffer_.resize(old + n);
  return n > 0;
}

std::optional<std::string> LineReader::readline(std::size_t max_length) {
  std::size_t scanned = 0;  // bytes after start_ known to hold no newline
  for (;;) {
    const std::size_t nl = buffer_.find('\n', start_ + scanned);
    if (nl != std::string::npos && nl - start_ <= max_length) {
      std::size_t end = nl;
      if (end > start_ && buffer_[end - 1] == '\r') --end;
      std::string line = buffer_.substr(start_, end - start_);
      start_ = nl + 1;
      return line;
    }
    if (buffered() > max_length)
      throw LineTooLong(fmt::format("readline: no end of line within {} bytes", max_length));
    scanned = buffered();
    if (!fill()) {
      if (buffered() == 0) return std::nullopt;
      throw ProtocolError(
          fmt::format("readline: the peer closed the connection in the middle of a line ({} bytes)", buffered()));
    }
  }
}

std::string LineReader::read_exact(std::size_t n) {
  while (buffered() < n) {
    if (!fill())
      throw ProtocolError(
          fmt::format("read_exact: the peer closed the connection after {} of {} bytes", buffered(), n));
  }
  std::string data = buffer_.substr(start_, n);
  start_ += n;
  return data;
}

std::string LineReader::read_some(std::size_t max) {
  if (buffered() == 0 && !fill()) return "";
  const std::size_t n = std::min(max, buffered());
  std::string data = buffer_.substr(start_, n);
  start_ += n;
  return data;
}

}  // namespace conclab
