#include "conclab/socket.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

#include "conclab/cli.hpp"
#include "conclab/clock.hpp"
#include "proc_counts.hpp"
#include "conclab/process.hpp"
#include "conclab/signals.hpp"

using namespace std::chrono_literals;
using conclab::Address;
using conclab::Socket;

namespace conclab {
// How GoogleTest shows an Address in a failure.
void PrintTo(const Address& a, std::ostream* os) { *os << a.str(); }
}  // namespace conclab

namespace {

using conclab::test::open_descriptors;

// A connected TCP pair over loopback: {client, server side}.
std::pair<Socket, Socket> tcp_pair(const std::string& host = "127.0.0.1") {
  Socket listener = conclab::create_server(host, 0);
  Socket client = conclab::create_connection(host, listener.address().port());
  auto accepted = listener.accept();
  return {std::move(client), std::move(accepted.conn)};
}

bool has_ipv6_loopback() {
  try {
    conclab::create_server("::1", 0);
    return true;
  } catch (const std::exception&) {
    return false;
  }
}

// Whether /proc/net/tcp shows a 127.0.0.1:port socket in TIME_WAIT.
bool in_time_wait(std::uint16_t port) {
  std::ifstream tcp("/proc/net/tcp");
  const std::string local = fmt::format("0100007F:{:04X}", port);
  std::string line;
  std::getline(tcp, line);  // the header
  while (std::getline(tcp, line)) {
    std::istringstream fields(line);
    std::string slot, local_address, remote_address, state;
    fields >> slot >> local_address >> remote_address >> state;
    if (local_address == local && state == "06") return true;
  }
  return false;
}

}  // namespace

TEST(Address, PrintsAsHostColonPortWithIPv6Bracketed) {
  EXPECT_EQ(Address::ip("127.0.0.1", 9999).str(), "127.0.0.1:9999");
  EXPECT_EQ(Address::ip("::1", 9999).str(), "[::1]:9999");
  EXPECT_EQ(fmt::format("{}", Address::ip("::1", 80)), "[::1]:80");
  EXPECT_EQ(Address::unix_path("/tmp/x.sock").str(), "/tmp/x.sock");
  EXPECT_EQ(Address::unix_path("@abstract").str(), "@abstract");
  EXPECT_EQ(Address::ip("10.1.2.3", 7).family(), conclab::Family::ipv4);
  EXPECT_EQ(Address::ip("::1", 7).family(), conclab::Family::ipv6);
  EXPECT_EQ(Address().family(), conclab::Family::unspec);
  EXPECT_THROW(Address::ip("localhost", 1), std::invalid_argument);  // numeric only: resolve() resolves
  EXPECT_THROW(Address::unix_path(std::string(200, 'x')), std::invalid_argument);
}

TEST(Resolve, LocalhostResolvesAsTheOsSaysAndABadNameIsAResolveError) {
  const auto infos = conclab::resolve("localhost", 80);
  ASSERT_FALSE(infos.empty());
  for (const auto& info : infos) {
    EXPECT_EQ(info.address.port(), 80);
    EXPECT_TRUE(info.family == conclab::Family::ipv4 || info.family == conclab::Family::ipv6);
  }
  try {
    conclab::resolve("no-such-host.invalid", 80);
    FAIL() << "resolved a .invalid name";
  } catch (const conclab::ResolveError& e) {
    EXPECT_EQ(std::string(e.what()).rfind("getaddrinfo: ", 0), 0U) << e.what();
    EXPECT_NE(std::string(e.what()).find("no-such-host.invalid"), std::string::npos) << e.what();
  }
}

TEST(Socket, EchoesOverIPv4WithPortZeroReported) {
  Socket listener = conclab::create_server("127.0.0.1", 0);
  const Address bound = listener.address();
  EXPECT_EQ(bound.host(), "127.0.0.1");
  EXPECT_NE(bound.port(), 0);
  Socket client = conclab::create_connection("127.0.0.1", bound.port(), 5s);
  auto [conn, peer] = listener.accept();
  EXPECT_EQ(peer, client.getsockname());
  EXPECT_EQ(conn.getpeername(), client.getsockname());
  client.send_all("Hello, world");
  EXPECT_EQ(conn.recv_exact(12), "Hello, world");
  conn.send_all("back");
  EXPECT_EQ(client.recv(1024), "back");
  client.close();
  EXPECT_EQ(conn.recv(1024), "");  // the peer closed
}

TEST(Socket, WorksOverIPv6Loopback) {
  if (!has_ipv6_loopback()) GTEST_SKIP() << "no ::1 on this machine";
  auto [client, server] = tcp_pair("::1");
  EXPECT_EQ(client.family(), conclab::Family::ipv6);
  EXPECT_EQ(server.getsockname().str().rfind("[::1]:", 0), 0U);
  client.send_all("six");
  EXPECT_EQ(server.recv_exact(3), "six");
}

TEST(Socket, CreateConnectionTriesEveryAddressOfLocalhost) {
  // localhost may give ::1 and 127.0.0.1; a server on only one of them is
  // still reached (the seed 001 loop).
  Socket listener = conclab::create_server("127.0.0.1", 0);
  Socket client = conclab::create_connection("localhost", listener.address().port(), 5s);
  EXPECT_EQ(client.getpeername(), listener.address());
}

namespace {

// A port nothing listens on (a server bound to it, then closed), on `host`.
std::uint16_t closed_port(const std::string& host) { return conclab::create_server(host, 0).address().port(); }

conclab::AddrInfo stream_to(const std::string& numeric_host, std::uint16_t port, int protocol = 0) {
  const Address a = Address::ip(numeric_host, port);
  return {a.family(), conclab::Type::stream, protocol, a};
}

}  // namespace

TEST(Socket, CreateConnectionFallsBackFromAClosedIpv6PortToIpv4) {
  // Without ::1, the first address fails otherwise (socket() or connect()):
  // the fallback is still what is tested.
  const std::uint16_t closed = has_ipv6_loopback() ? closed_port("::1") : closed_port("127.0.0.1");
  Socket listener = conclab::create_server("127.0.0.1", 0);
  Socket client =
      conclab::detail::connect_first({stream_to("::1", closed), stream_to("127.0.0.1", listener.address().port())}, 5s);
  EXPECT_EQ(client.getpeername(), listener.address());
  EXPECT_EQ(client.gettimeout(), conclab::Timeout(5s));  // the winner keeps the timeout
}

TEST(Socket, CreateConnectionNamesEveryAddressTriedWhenNoneConnects) {
  const int before = open_descriptors();
  const std::uint16_t v6 = has_ipv6_loopback() ? closed_port("::1") : closed_port("127.0.0.1");
  const std::uint16_t v4 = closed_port("127.0.0.1");
  try {
    conclab::detail::connect_first({stream_to("::1", v6), stream_to("127.0.0.1", v4)}, 5s);
    FAIL() << "connected to closed ports";
  } catch (const conclab::SocketError& e) {
    EXPECT_EQ(e.code().value(), ECONNREFUSED);  // the last address's error
    EXPECT_EQ(std::string(e.what()), fmt::format("connect: Connection refused; tried [::1]:{}, 127.0.0.1:{}", v6, v4));
  }
  EXPECT_THROW(conclab::detail::connect_first({}, std::nullopt), std::invalid_argument);
  EXPECT_EQ(open_descriptors(), before);
}

TEST(Socket, CreateConnectionGoesOnWhenAnAddressGetsNoSocket) {
  // socket(AF_INET, SOCK_STREAM, IPPROTO_UDP) fails (EPROTONOSUPPORT), as
  // socket() does for a family the kernel lacks: that address is skipped,
  // not the end of the loop (Python's create_connection does the same).
  const int before = open_descriptors();
  Socket listener = conclab::create_server("127.0.0.1", 0);
  const std::uint16_t port = listener.address().port();
  {
    Socket client =
        conclab::detail::connect_first({stream_to("127.0.0.1", port, IPPROTO_UDP), stream_to("127.0.0.1", port)}, 5s);
    EXPECT_EQ(client.getpeername(), listener.address());
    listener.accept();
  }
  // When it is the last address, its error is the one reported, naming the call.
  try {
    conclab::detail::connect_first(
        {stream_to("127.0.0.1", closed_port("127.0.0.1")), stream_to("127.0.0.1", port, IPPROTO_UDP)}, 5s);
    FAIL() << "connected with a socket that cannot be created";
  } catch (const conclab::SocketError& e) {
    EXPECT_EQ(e.code().value(), EPROTONOSUPPORT);
    EXPECT_EQ(std::string(e.what()).rfind("socket: Protocol not supported; tried 127.0.0.1:", 0), 0U) << e.what();
  }
  listener.close();
  EXPECT_EQ(open_descriptors(), before);
}

TEST(Socket, APortInUseIsABindErrorNamingTheAddress) {
  Socket first = conclab::create_server("127.0.0.1", 0);
  const auto port = first.address().port();
  try {
    conclab::create_server("127.0.0.1", port);
    FAIL() << "bound a port in use";
  } catch (const conclab::SocketError& e) {
    EXPECT_EQ(e.code().value(), EADDRINUSE);
    EXPECT_EQ(std::string(e.what()), fmt::format("bind: Address already in use; 127.0.0.1:{}", port));
  }
}

TEST(Socket, ARestartedServerBindsWhileItsOldConnectionIsInTimeWait) {
  // The server closes its side first, so its port's connection sits in
  // TIME_WAIT (60 s on Linux) after the server is gone. Without
  // SO_REUSEADDR, create_server() on that port would fail with EADDRINUSE.
  std::uint16_t port;
  {
    Socket listener = conclab::create_server("127.0.0.1", 0);
    port = listener.address().port();
    Socket client = conclab::create_connection("127.0.0.1", port, 5s);
    auto accepted = listener.accept();
    accepted.conn.close();           // the server closes first ...
    EXPECT_EQ(client.recv(16), "");  // ... the client sees it
    client.close();                  // and closes its side too
    const conclab::Stopwatch watch;
    while (!in_time_wait(port) && watch.seconds() < 5.0) std::this_thread::sleep_for(1ms);
    ASSERT_TRUE(in_time_wait(port)) << "no TIME_WAIT on port " << port;
  }  // the server's listening socket is closed
  Socket restarted = conclab::create_server("127.0.0.1", port);
  EXPECT_EQ(restarted.address().port(), port);
}

TEST(Socket, AClosedPortIsConnectionRefusedAndNothingLeaks) {
  const int before = open_descriptors();
  std::uint16_t port;
  {
    Socket gone = conclab::create_server("127.0.0.1", 0);
    port = gone.address().port();
  }
  try {
    conclab::create_connection("127.0.0.1", port);
    FAIL() << "connected to a closed port";
  } catch (const conclab::SocketError& e) {
    EXPECT_EQ(e.code().value(), ECONNREFUSED);
    EXPECT_EQ(std::string(e.what()), fmt::format("connect: Connection refused; 127.0.0.1:{}", port));
  }
  EXPECT_THROW(conclab::create_connection("no-such-host.invalid", 80), conclab::ResolveError);
  EXPECT_EQ(open_descriptors(), before);
}

TEST(Socket, ATimeoutIsATimeoutErrorNotASocketError) {
  auto [client, server] = tcp_pair();
  server.settimeout(100ms);
  EXPECT_EQ(server.gettimeout(), conclab::Timeout(100ms));
  conclab::Stopwatch watch;
  try {
    server.recv(10);
    FAIL() << "recv returned with nothing sent";
  } catch (const conclab::TimeoutError& e) {
    EXPECT_EQ(std::string(e.what()), "recv: timed out");
  }
  EXPECT_GE(watch.seconds(), 0.09);
  EXPECT_LT(watch.seconds(), 5.0);
  client.send_all("late");  // the socket is still usable after a timeout
  EXPECT_EQ(server.recv_exact(4), "late");
}

// A timeout too large for a deadline (nanoseconds::max()) waits as long as it
// takes: the sum now + timeout would overflow into the past, "timed out" at once.
TEST(Socket, AHugeTimeoutWaitsForTheData) {
  auto [client, server] = tcp_pair();
  server.settimeout(std::chrono::nanoseconds::max());
  std::thread late([&client = client] {
    std::this_thread::sleep_for(50ms);
    client.send_all("late");
  });
  EXPECT_EQ(server.recv_exact(4), "late");
  late.join();
}

TEST(Socket, AcceptTimesOut) {
  Socket listener = conclab::create_server("127.0.0.1", 0);
  listener.settimeout(50ms);
  EXPECT_THROW(listener.accept(), conclab::TimeoutError);
}

TEST(Socket, NonBlockingModeThrowsEagainInsteadOfWaiting) {
  auto [client, server] = tcp_pair();
  server.setblocking(false);
  try {
    server.recv(10);
    FAIL() << "a non-blocking recv with nothing to read returned";
  } catch (const conclab::SocketError& e) {
    EXPECT_EQ(e.code().value(), EAGAIN);
  }
  server.setblocking(true);
  EXPECT_EQ(server.gettimeout(), std::nullopt);
  client.send_all("x");
  EXPECT_EQ(server.recv(10), "x");
}

TEST(Socket, SendMayBePartialAndSendAllIsNot) {
  auto [client, server] = tcp_pair();
  client.setsockopt(SOL_SOCKET, SO_SNDBUF, 16 * 1024);
  client.settimeout(0s);  // non-blocking: send() takes what fits now
  const std::string big(1 << 20, 'x');
  const std::size_t took = client.send(big);
  EXPECT_GT(took, 0U);
  EXPECT_LT(took, big.size());  // nobody reads: the kernel took only part of it
  client.settimeout(std::nullopt);
  std::thread reader([&server, expected = big.size()] {
    std::size_t total = 0;
    while (total < expected) {
      const std::string chunk = server.recv(1 << 16);
      if (chunk.empty()) break;
      total += chunk.size();
    }
  });
  client.send_all(std::string_view(big).substr(took));  // the rest, all of it
  client.shutdown(SHUT_WR);
  reader.join();
}

TEST(Socket, APeerThatResetsIsAnErrorNeverSigpipe) {
  // SIGPIPE has its default action (death) here: without MSG_NOSIGNAL the
  // test binary would die instead of seeing an exception.
  ASSERT_EQ(std::signal(SIGPIPE, SIG_DFL), SIG_DFL);
  auto [client, server] = tcp_pair();
  const auto peer_port = server.getsockname().port();
  ::linger lin{1, 0};
  ASSERT_EQ(::setsockopt(server.fileno(), SOL_SOCKET, SO_LINGER, &lin, sizeof lin), 0);
  server.close();  // RST
  const std::string chunk(1 << 20, 'y');
  try {
    for (int i = 0; i < 100; ++i) client.send_all(chunk);
    FAIL() << "send_all to a reset peer succeeded";
  } catch (const conclab::SocketError& e) {
    EXPECT_TRUE(e.code().value() == EPIPE || e.code().value() == ECONNRESET) << e.what();
    EXPECT_EQ(std::string(e.what()).rfind("send_all: ", 0), 0U) << e.what();
    // The message names the peer, though getpeername() fails after a reset.
    EXPECT_NE(std::string(e.what()).find(fmt::format("; peer 127.0.0.1:{}", peer_port)), std::string::npos) << e.what();
  }
}

TEST(Socket, RecvExactReportsAPeerThatClosesEarly) {
  auto [client, server] = tcp_pair();
  client.send_all("abc");
  client.close();
  try {
    server.recv_exact(10);
    FAIL();
  } catch (const conclab::ProtocolError& e) {
    EXPECT_NE(std::string(e.what()).find("after 3 of 10 bytes"), std::string::npos) << e.what();
  }
}

TEST(Socket, UdpReportsATruncatedDatagram) {
  Socket server = conclab::create_server("127.0.0.1", 0, conclab::Type::datagram);
  Socket client(conclab::Family::ipv4, conclab::Type::datagram);
  EXPECT_EQ(client.sendto("0123456789", server.address()), 10U);
  conclab::Datagram d = server.recvfrom(4);
  EXPECT_EQ(d.data, "0123");
  EXPECT_TRUE(d.truncated);
  EXPECT_EQ(d.full_size, 10U);
  EXPECT_EQ(d.peer.str(), fmt::format("127.0.0.1:{}", client.getsockname().port()));  // bound by sendto
  client.sendto("ok", server.address());
  d = server.recvfrom(4);
  EXPECT_EQ(d.data, "ok");
  EXPECT_FALSE(d.truncated);
}

TEST(Socket, UnixStreamSocketsAndSocketpair) {
  const std::string path = fmt::format("/tmp/conclab-test-{}.sock", ::getpid());
  ::unlink(path.c_str());
  {
    Socket listener = conclab::create_unix_server(path);
    Socket client = conclab::create_unix_connection(path, 5s);
    auto [conn, peer] = listener.accept();
    client.send_all("unix");
    EXPECT_EQ(conn.recv_exact(4), "unix");
    EXPECT_EQ(listener.address().str(), path);
    EXPECT_THROW(conclab::create_unix_server(path), conclab::SocketError);  // an existing file is not replaced
  }
  ::unlink(path.c_str());
  auto [a, b] = conclab::socketpair();
  a.send_all("pair");
  EXPECT_EQ(b.recv_exact(4), "pair");
}

// A Socket owns its descriptor: it can be moved (without throwing), never
// copied (two owners would close it twice).
static_assert(!std::is_copy_constructible_v<Socket> && !std::is_copy_assignable_v<Socket>);
static_assert(std::is_nothrow_move_constructible_v<Socket> && std::is_nothrow_move_assignable_v<Socket>);

TEST(Socket, MovesAndClosesItsDescriptorOnce) {
  const int before = open_descriptors();
  {
    Socket a(conclab::Family::ipv4, conclab::Type::stream);
    const int fd = a.fileno();
    Socket b = std::move(a);
    EXPECT_EQ(b.fileno(), fd);
    EXPECT_FALSE(a);  // NOLINT(bugprone-use-after-move): moved-from is empty
    EXPECT_EQ(::fcntl(fd, F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
  }
  EXPECT_EQ(open_descriptors(), before);
}

TEST(LineReader, ReadsLinesThenRawBytesAndRefusesLongLines) {
  auto [client, server] = tcp_pair();
  client.send_all("post|a.txt|5\r\nhelloGET / HTTP/1.1\n");
  client.send_all(std::string(100, 'z'));
  client.shutdown(SHUT_WR);
  conclab::LineReader reader(server, 7);  // a small chunk: lines span several recv() calls
  EXPECT_EQ(reader.readline(64), "post|a.txt|5");
  EXPECT_EQ(reader.read_exact(5), "hello");
  EXPECT_EQ(reader.readline(64), "GET / HTTP/1.1");
  EXPECT_THROW(reader.readline(50), conclab::LineTooLong);  // 100 bytes, no newline
}

TEST(LineReader, EndOfStreamBetweenLinesAndInsideOne) {
  auto [client, server] = tcp_pair();
  client.send_all("one\ntwo");
  client.close();
  conclab::LineReader reader(server);
  EXPECT_EQ(reader.readline(10), "one");
  EXPECT_THROW(reader.readline(10), conclab::ProtocolError);  // "two" without its newline
  auto [c2, s2] = tcp_pair();
  c2.close();
  conclab::LineReader empty(s2);
  EXPECT_EQ(empty.readline(10), std::nullopt);
}

TEST(Socket, RetriesEintrAndStillGetsTheData) {
  struct sigaction action {};
  action.sa_handler = [](int) {};
  sigemptyset(&action.sa_mask);
  action.sa_flags = 0;  // no SA_RESTART: recv() really returns EINTR
  struct sigaction old {};
  ASSERT_EQ(::sigaction(SIGUSR1, &action, &old), 0);
  auto [client, server] = tcp_pair();
  std::atomic<bool> entered{false};
  std::string got;
  std::thread reader([&] {
    entered = true;
    got = server.recv_exact(5);
  });
  while (!entered) std::this_thread::yield();
  for (int i = 0; i < 20; ++i) {
    ::pthread_kill(reader.native_handle(), SIGUSR1);
    std::this_thread::sleep_for(1ms);
  }
  client.send_all("after");
  reader.join();
  EXPECT_EQ(got, "after");
  ::sigaction(SIGUSR1, &old, nullptr);
}

TEST(Signals, StopSignalWakesAThreadBlockedInRecvWhicheverThreadGetsIt) {
  // In a child, so that the handler does not stay in this test process. The
  // child reports through its exit code: 0 when a thread blocked in recv()
  // got Interrupted after SIGTERM was sent to the process.
  conclab::Process child([] {
    conclab::stop_on_signals();
    auto [client, server] = tcp_pair();
    std::atomic<int> outcome{1};
    std::atomic<bool> entered{false};
    std::thread reader([&] {
      entered = true;
      try {
        server.recv(10);
        outcome = 2;  // returned: wrong
      } catch (const conclab::Interrupted& e) {
        outcome = e.signal() == SIGTERM && std::string(e.what()) == "interrupted by SIGTERM" ? 0 : 3;
      } catch (...) {
        outcome = 4;
      }
    });
    while (!entered) std::this_thread::yield();
    std::this_thread::sleep_for(20ms);
    ::kill(::getpid(), SIGTERM);
    reader.join();
    // A call made after the signal does not block either.
    try {
      server.recv(10);
      return 5;
    } catch (const conclab::Interrupted&) {
    }
    return outcome.load();
  });
  child.start();
  if (!child.join(20s)) {
    child.kill();
    child.join();
    FAIL() << "the thread blocked in recv() never woke up after SIGTERM";
  }
  EXPECT_EQ(child.exitcode(), 0);
}

TEST(Signals, AChildHasAStopPipeOfItsOwnAndDoesNotSpinOnTheParentsSignal) {
  // Parent and child once shared the stop pipe: the parent's SIGTERM made it
  // readable for the child too, whose flag was unset, so the child's recv()
  // woke, waited again, woke again: a busy loop. Exit codes: 0 ok, 2 the
  // child spun, 3 the child did not end normally.
  conclab::Process parent([]() -> int {
    conclab::stop_on_signals();
    auto [mine, childs] = conclab::socketpair();
    conclab::Process child([&childs]() -> int { return childs.recv(10) == "" ? 0 : 1; });
    child.set_pass_fds({childs.fileno()});
    child.start();
    childs.close();
    ::kill(::getpid(), SIGTERM);  // the parent is asked to stop; the child is not
    std::this_thread::sleep_for(300ms);
    long ticks = 0;  // the child's user + system CPU time over those 300 ms
    std::ifstream stat("/proc/" + std::to_string(*child.pid()) + "/stat");
    std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
    std::istringstream fields(text.substr(text.rfind(')') + 2));
    std::string field;
    for (int i = 3; i <= 15 && fields >> field; ++i)
      if (i == 14 || i == 15) ticks += std::stol(field);
    mine.close();  // now the child's recv() returns "": it ends
    child.join();
    if (ticks > 10) return 2;
    return child.exitcode() == 0 ? 0 : 3;
  });
  parent.start();
  ASSERT_TRUE(parent.join(30s)) << "the parent hung";
  EXPECT_EQ(parent.exitcode(), 0);
}

TEST(Socket, ASecondUdpServerOnTheSamePortIsRefused) {
  // SO_REUSEADDR is for TCP's TIME_WAIT; on a UDP socket it would let two
  // servers share the port (and one of them get the datagrams).
  Socket first = conclab::create_server("127.0.0.1", 0, conclab::Type::datagram);
  try {
    conclab::create_server("127.0.0.1", first.address().port(), conclab::Type::datagram);
    FAIL() << "two UDP servers bound one port";
  } catch (const conclab::SocketError& e) {
    EXPECT_EQ(e.code().value(), EADDRINUSE);
  }
}

TEST(Socket, RecvfromOnAStreamKeepsTheData) {
  auto [client, server] = tcp_pair();
  client.send_all("hello");
  conclab::Datagram d = server.recvfrom(100);
  EXPECT_EQ(d.data, "hello");
  EXPECT_FALSE(d.truncated);
}

TEST(Socket, AcceptOutOfDescriptorsWaitsInsteadOfEndingTheServer) {
  // In a child (its descriptor limit is lowered): it reports through its
  // exit code. A thread frees one descriptor after 200 ms, and accept() must
  // have waited for it. While the descriptors are used up, no thread ends
  // and nothing is thrown: the sanitizers' runtimes need descriptors for
  // that. (UBSan's vptr check of std::thread's state, deleted as the thread
  // ends, tests that the vtable is readable by writing it into a pipe(): two
  // descriptors. When the freeing thread ended right after freeing, accept()
  // could take one of them first, and the check failed: 1 run in ~170.) So
  // the limit is raised back before the freeing thread may end.
  conclab::Process child([] {
    Socket listener = conclab::create_server("127.0.0.1", 0);
    Socket client = conclab::create_connection("127.0.0.1", listener.address().port());
    std::vector<conclab::unique_fd> filler;
    std::atomic<bool> started{false}, full{false}, restored{false};
    std::thread freer([&] {
      started = true;
      while (!full) std::this_thread::sleep_for(1ms);
      std::this_thread::sleep_for(200ms);
      filler.back().reset();  // one descriptor free again, as when a connection being served closes
      while (!restored) std::this_thread::sleep_for(1ms);  // end only with descriptors to spare
    });
    while (!started) std::this_thread::sleep_for(1ms);  // running before the descriptors run out
    ::rlimit limit{};
    ::getrlimit(RLIMIT_NOFILE, &limit);
    const ::rlimit original = limit;
    limit.rlim_cur = static_cast<rlim_t>(open_descriptors() + 2);
    if (::setrlimit(RLIMIT_NOFILE, &limit) != 0) return 10;
    filler.reserve(64);
    for (;;) {  // use up every descriptor
      const int fd = ::dup(0);
      if (fd < 0) break;
      filler.emplace_back(fd);
    }
    if (filler.empty() || filler.size() == filler.capacity()) return 11;
    conclab::Stopwatch watch;
    full = true;
    int code = 0;
    try {
      auto [conn, peer] = listener.accept();  // EMFILE until the freer thread closes one
      code = peer != client.getsockname() ? 14 : watch.seconds() < 0.15 ? 16 : 0;
    } catch (...) {
      code = 15;  // EMFILE thrown: a server loop would have ended here
    }
    if (::setrlimit(RLIMIT_NOFILE, &original) != 0 && code == 0) code = 17;
    restored = true;
    freer.join();
    return code;
  });
  child.start();
  ASSERT_TRUE(child.join(20s));
  EXPECT_EQ(child.exitcode(), 0);
}

TEST(Cli, RunMainIgnoresSigpipeSoAClosedPipeIsAnErrorNotADeath) {
  conclab::Process child([] {
    int fds[2];
    if (::pipe(fds) != 0) return 10;
    ::close(fds[0]);  // nobody reads
    CLI::App app{"test"};
    char name[] = "test";
    char* argv[] = {name, nullptr};
    const int code = conclab::run_main(app, 1, argv, [&] {
      if (::write(fds[1], "x", 1) < 0) conclab::throw_errno("write");
    });
    return code == conclab::kExitFailure ? 0 : 20 + code;
  });
  child.start();
  ASSERT_TRUE(child.join(20s));
  EXPECT_EQ(child.exitcode(), 0);  // -13 (SIGPIPE) without ignore_sigpipe()
}
