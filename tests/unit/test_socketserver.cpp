#include "conclab/socketserver.hpp"

#include <dirent.h>
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "conclab/clock.hpp"
#include "proc_counts.hpp"
#include "conclab/process.hpp"
#include "conclab/signals.hpp"

using namespace std::chrono_literals;
using conclab::Socket;

namespace {

using conclab::test::open_descriptors;
using conclab::test::threads_of_this_process;

std::string upper(std::string s) {
  for (char& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

// The seed's MyTCPHandler: one recv, the same bytes upper-cased back.
struct Upper : conclab::BaseRequestHandler {
  using BaseRequestHandler::BaseRequestHandler;
  void handle() override { request.send_all(upper(request.recv(1024))); }
};

// Upper, counting its finish() calls, and throwing on "boom".
std::atomic<int> g_finished{0};
struct Throwing : conclab::BaseRequestHandler {
  using BaseRequestHandler::BaseRequestHandler;
  void handle() override {
    std::string data = request.recv(1024);
    if (data == "boom") throw std::runtime_error("the handler blew up");
    request.send_all(upper(data));
  }
  void finish() override { ++g_finished; }
};

struct UpperDatagram : conclab::DatagramRequestHandler {
  using DatagramRequestHandler::DatagramRequestHandler;
  void handle() override { wfile = upper(packet); }
};

// Sleeps 150 ms, then answers: a request that takes time.
struct Slow : conclab::BaseRequestHandler {
  using BaseRequestHandler::BaseRequestHandler;
  void handle() override {
    std::string data = request.recv(1024);
    std::this_thread::sleep_for(150ms);
    request.send_all(upper(data));
  }
};

std::string ask(std::uint16_t port, const std::string& what) {
  Socket c = conclab::create_connection("127.0.0.1", port, 10s);
  c.send_all(what);
  return c.recv(1024);
}

// serve_forever() in a thread of its own, stopped and joined at the end.
template <class Server>
struct Serving {
  Server& server;
  std::thread thread;
  explicit Serving(Server& s) : server(s), thread([this] { server.serve_forever(); }) {}
  ~Serving() {
    server.shutdown();
    thread.join();
  }
};

template <class Server>
double median_shutdown_seconds(int rounds) {
  std::vector<double> took;
  for (int i = 0; i < rounds; ++i) {
    Server server("127.0.0.1", 0);
    std::thread t([&] { server.serve_forever(); });
    EXPECT_EQ(ask(server.server_address().port(), "x"), "X");  // the loop runs
    conclab::Stopwatch clock;
    server.shutdown();
    took.push_back(clock.seconds());
    t.join();
  }
  std::sort(took.begin(), took.end());
  return took[took.size() / 2];
}

TEST(SocketServer, ServesOnAFreePortAndReportsIt) {
  conclab::TCPServer<Upper> server("127.0.0.1", 0);
  EXPECT_NE(server.server_address().port(), 0);
  EXPECT_EQ(server.server_address().host(), "127.0.0.1");
  Serving s(server);
  EXPECT_EQ(ask(server.server_address().port(), "hello"), "HELLO");
  EXPECT_EQ(ask(server.server_address().port(), "again"), "AGAIN");
}

TEST(SocketServer, ServesOverIpv6) {
  std::optional<conclab::TCPServer<Upper>> server;
  try {
    server.emplace("::1", 0);
  } catch (const conclab::SocketError&) {
    GTEST_SKIP() << "no IPv6 loopback";
  }
  Serving s(*server);
  Socket c = conclab::create_connection("::1", server->server_address().port(), 10s);
  c.send_all("six");
  EXPECT_EQ(c.recv(10), "SIX");
}

TEST(SocketServer, ShutdownReturnsWithinMillisecondsNotAPollInterval) {
  // CPython's serve_forever() looks at the shutdown flag every 0.5 s
  // (gh-88932): about 0.25 s on average. conclab's loop is woken at once.
  EXPECT_LT(median_shutdown_seconds<conclab::TCPServer<Upper>>(9), 0.010);
  EXPECT_LT(median_shutdown_seconds<conclab::ThreadingTCPServer<Upper>>(9), 0.010);
}

TEST(SocketServer, ShutdownBeforeServeForeverAndTwiceDoNotHang) {
  conclab::TCPServer<Upper> server("127.0.0.1", 0);
  conclab::Stopwatch clock;
  server.shutdown();  // CPython waits forever here
  server.shutdown();
  server.serve_forever();  // the request stands: returns at once
  EXPECT_LT(clock.seconds(), 1.0);
  // ... and only once: the next serve_forever() serves.
  Serving s(server);
  EXPECT_EQ(ask(server.server_address().port(), "on"), "ON");
}

TEST(SocketServer, ShutdownFromAHandlerOnTheServingThreadDoesNotDeadlock) {
  struct Stopper : conclab::BaseRequestHandler {
    using BaseRequestHandler::BaseRequestHandler;
    void handle() override {
      request.send_all("bye");
      server.shutdown();
    }
  };
  conclab::TCPServer<Stopper> server("127.0.0.1", 0);
  std::thread t([&] { server.serve_forever(); });
  EXPECT_EQ(ask(server.server_address().port(), "x"), "bye");
  t.join();  // the loop ended by itself
}

// A server that counts its handle_timeout() calls.
struct Counting : conclab::TCPServer<Upper> {
  using TCPServer::TCPServer;
  int timeouts = 0;
  void handle_timeout() override { ++timeouts; }
};

TEST(SocketServer, HandleRequestServesOneOrTimesOut) {
  Counting server("127.0.0.1", 0);
  server.timeout = std::chrono::duration<double>(0.05);
  conclab::Stopwatch clock;
  EXPECT_FALSE(server.handle_request());
  EXPECT_GE(clock.seconds(), 0.045);
  EXPECT_EQ(server.timeouts, 1);
  std::thread client([&] { EXPECT_EQ(ask(server.server_address().port(), "one"), "ONE"); });
  server.timeout = std::chrono::duration<double>(10.0);
  EXPECT_TRUE(server.handle_request());
  client.join();
}

// handle_request() with a timeout too large for a deadline (1e300 s) waits
// for the request instead of overflowing (undefined behaviour) into "timed out".
TEST(SocketServer, HandleRequestWithAHugeTimeoutWaitsForTheRequest) {
  Counting server("127.0.0.1", 0);
  server.timeout = std::chrono::duration<double>(1e300);
  std::thread client([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    EXPECT_EQ(ask(server.server_address().port(), "late"), "LATE");
  });
  EXPECT_TRUE(server.handle_request());
  EXPECT_EQ(server.timeouts, 0);
  client.join();
}

TEST(SocketServer, AHandlerThatThrowsIsReportedFinishRunsAndTheServerGoesOn) {
  g_finished = 0;
  conclab::TCPServer<Throwing> server("127.0.0.1", 0);
  testing::internal::CaptureStderr();
  std::string local;
  {
    Serving s(server);
    Socket c = conclab::create_connection("127.0.0.1", server.server_address().port(), 10s);
    local = c.getsockname().str();
    c.send_all("boom");
    EXPECT_EQ(c.recv(10), "");  // closed without an answer
    EXPECT_EQ(ask(server.server_address().port(), "fine"), "FINE");
  }
  const std::string err = testing::internal::GetCapturedStderr();
  EXPECT_EQ(g_finished, 2);
  EXPECT_NE(err.find("error handling request from " + local + ": the handler blew up"), std::string::npos) << err;
}

TEST(SocketServer, BadClientsDoNotStopAThreadingServerOrLeakDescriptors) {
  const int before = open_descriptors();
  {
    conclab::ThreadingTCPServer<Throwing> server("127.0.0.1", 0);
    const auto port = server.server_address().port();
    testing::internal::CaptureStderr();
    Serving s(server);
    Socket silent = conclab::create_connection("127.0.0.1", port, 10s);  // connects, says nothing
    {
      Socket gone = conclab::create_connection("127.0.0.1", port, 10s);  // leaves before a request
    }
    {
      Socket reset = conclab::create_connection("127.0.0.1", port, 10s);
      ::linger l{1, 0};  // linger 0: close() sends RST
      ::setsockopt(reset.fileno(), SOL_SOCKET, SO_LINGER, &l, sizeof l);
    }
    {
      Socket flood = conclab::create_connection("127.0.0.1", port, 10s);  // more than the handler reads
      flood.send_all(std::string(64 * 1024, 'a'));
    }
    EXPECT_EQ(ask(port, "still here"), "STILL HERE");  // served while `silent` waits
    silent.close();
    // Every thread ends and is joined without server_close().
    for (int i = 0; i < 500 && server.active_threads() > 0; ++i) std::this_thread::sleep_for(10ms);
    EXPECT_EQ(server.active_threads(), 0u);
    (void)testing::internal::GetCapturedStderr();
  }
  EXPECT_EQ(open_descriptors(), before);
}

TEST(SocketServer, ThreadingServerJoinsThreadsAsTheyEnd) {
  // gh-81374: CPython's ThreadingMixIn kept every finished thread in a list
  // until server_close(): a long-running server grew without bound.
  conclab::ThreadingTCPServer<Upper> server("127.0.0.1", 0);
  Serving s(server);
  for (int i = 0; i < 200; ++i) ASSERT_EQ(ask(server.server_address().port(), "x"), "X");
  for (int i = 0; i < 500 && server.active_threads() > 0; ++i) std::this_thread::sleep_for(10ms);
  EXPECT_EQ(server.active_threads(), 0u) << "finished threads were kept";
}

TEST(SocketServer, ThreadingServerGrowsTheDescriptorTableAtItsFirstRequest) {
  // Grown later, under a burst, each doubling of the table would stall
  // accept() for an RCU grace period (fd.hpp, reserve_fd_table).
  rlimit limit{};
  ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &limit), 0);
  const auto want = std::min<rlim_t>(limit.rlim_cur, conclab::kMostReservedDescriptors);
  conclab::ThreadingTCPServer<Upper> server("127.0.0.1", 0);
  Serving s(server);
  ASSERT_EQ(ask(server.server_address().port(), "x"), "X");
  EXPECT_GE(conclab::test::fd_table_size(), static_cast<long>(want));
}

TEST(SocketServer, ServerCloseWaitsForThreadsUnlessTheyAreDaemons) {
  // Python 3.7+: block_on_close makes server_close() wait for the request
  // threads; daemon threads are not waited for. conclab's destructor still
  // ends a daemon thread blocked in recv() (it shuts its connection down).
  for (bool daemon : {false, true}) {
    conclab::Stopwatch clock;
    double close_took = 0;
    {
      conclab::ThreadingTCPServer<Upper> server("127.0.0.1", 0);
      server.daemon_threads = daemon;
      std::thread loop([&] { server.serve_forever(); });
      Socket silent = conclab::create_connection("127.0.0.1", server.server_address().port(), 10s);
      for (int i = 0; i < 500 && server.active_threads() == 0; ++i) std::this_thread::sleep_for(2ms);
      ASSERT_EQ(server.active_threads(), 1u);
      server.shutdown();
      loop.join();
      std::thread closer([&] {
        if (daemon) return;
        std::this_thread::sleep_for(200ms);
        silent.send_all("late");  // ends the non-daemon handler's recv()
      });
      clock.restart();
      server.server_close();
      close_took = clock.seconds();
      closer.join();
      clock.restart();
    }  // the destructor: a daemon thread still in recv() is ended, not waited for forever
    EXPECT_LT(clock.seconds(), 5.0);
    if (daemon)
      EXPECT_LT(close_took, 0.15) << "server_close() waited for a daemon thread";
    else
      EXPECT_GE(close_took, 0.15) << "server_close() did not wait for the request thread";
  }
}

template <class Server>
void thousand_at_once(Server& server) {
  constexpr int kClients = 1000;
  const auto port = server.server_address().port();
  std::vector<Socket> clients;
  clients.reserve(kClients);
  for (int i = 0; i < kClients; ++i) {
    clients.push_back(conclab::create_connection("127.0.0.1", port, 30s));
    clients.back().send_all("c" + std::to_string(i));
  }
  for (int i = 0; i < kClients; ++i) ASSERT_EQ(clients[i].recv(64), "C" + std::to_string(i)) << i;
}

TEST(SocketServer, AThousandConnectionsAtOnceOnTheThreadingServer) {
  std::thread([] {}).join();  // ThreadSanitizer starts a thread of its own with the first one: count after it
  const int threads_before = threads_of_this_process();
  const int fds_before = open_descriptors();
  {
    conclab::ThreadingTCPServer<Upper> server("127.0.0.1", 0);
    Serving s(server);
    thousand_at_once(server);
    for (int i = 0; i < 1000 && server.active_threads() > 0; ++i) std::this_thread::sleep_for(10ms);
    EXPECT_EQ(server.active_threads(), 0u);
  }
  EXPECT_EQ(threads_of_this_process(), threads_before);
  EXPECT_EQ(open_descriptors(), fds_before);
}

TEST(SocketServer, AThousandConnectionsAtOnceOnTheForkingServerLeaveNoZombie) {
  const int fds_before = open_descriptors();
  {
    conclab::ForkingTCPServer<Upper> server("127.0.0.1", 0);
    Serving s(server);
    thousand_at_once(server);
  }
  // Every child was reaped: no child of this process is left, not even a zombie.
  EXPECT_EQ(::waitpid(-1, nullptr, WNOHANG), -1);
  EXPECT_EQ(errno, ECHILD);
  EXPECT_EQ(open_descriptors(), fds_before);
}

TEST(SocketServer, ForkingServerReapsEachChildAsItEnds) {
  conclab::ForkingTCPServer<Upper> server("127.0.0.1", 0);
  Serving s(server);
  for (int i = 0; i < 20; ++i) ASSERT_EQ(ask(server.server_address().port(), "x"), "X");
  // Reaped by the loop as each ends, without server_close(): soon no child
  // of this process is left, not even a zombie (looked up in /proc: a
  // waitpid() here would reap the server's children itself).
  auto children = [] {
    std::string found;
    for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
      const std::string name = entry.path().filename();
      if (!std::all_of(name.begin(), name.end(), ::isdigit)) continue;
      std::ifstream stat(entry.path() / "stat");
      std::string line;
      std::getline(stat, line);
      const auto close = line.rfind(')');
      if (close == std::string::npos || close + 4 > line.size()) continue;
      if (std::atoi(line.c_str() + close + 4) == ::getpid()) found += name + line.substr(close + 1, 2) + " ";
    }
    return found;
  };
  std::string left = children();
  for (int i = 0; i < 500 && !left.empty(); ++i) {
    std::this_thread::sleep_for(10ms);
    left = children();
  }
  EXPECT_EQ(left, "") << "children of the server (pid state) left after their requests";
}

TEST(SocketServer, ForkingServerHonoursMaxChildren) {
  conclab::ForkingTCPServer<Slow> server("127.0.0.1", 0);
  server.max_children = 2;
  Serving s(server);
  std::vector<Socket> clients;
  conclab::Stopwatch clock;
  for (int i = 0; i < 6; ++i) {
    clients.push_back(conclab::create_connection("127.0.0.1", server.server_address().port(), 30s));
    clients.back().send_all("m");
  }
  for (auto& c : clients) ASSERT_EQ(c.recv(8), "M");
  // Six requests of 150 ms, two at a time: three rounds.
  EXPECT_GE(clock.seconds(), 0.44);
}

TEST(SocketServer, UdpServersAnswerEachDatagram) {
  conclab::UDPServer<UpperDatagram> sync("127.0.0.1", 0);
  conclab::ThreadingUDPServer<UpperDatagram> threaded("127.0.0.1", 0);
  Serving a(sync);
  Serving b(threaded);
  for (auto* address : {&sync.server_address(), &threaded.server_address()}) {
    Socket c(conclab::Family::ipv4, conclab::Type::datagram);
    c.settimeout(10s);
    c.sendto("ping", *address);
    EXPECT_EQ(c.recvfrom(64).data, "PING");
  }
}

TEST(SocketServer, UnixStreamServerRemovesItsSocketFile) {
  const std::string path = std::filesystem::temp_directory_path() / ("conclab-test-" + std::to_string(::getpid()) + ".sock");
  {
    conclab::UnixStreamServer<Upper> server(path);
    EXPECT_TRUE(std::filesystem::exists(path));
    Serving s(server);
    Socket c = conclab::create_unix_connection(path, 10s);
    c.send_all("unix");
    EXPECT_EQ(c.recv(10), "UNIX");
  }
  EXPECT_FALSE(std::filesystem::exists(path)) << "the socket file was left behind";
  // and the next server on the same path starts
  conclab::UnixStreamServer<Upper> again(path);
}

TEST(SocketServer, OutOfDescriptorsTheServerBacksOffSaysSoOnceAndRecovers) {
  // In a child: the descriptor limit and the exhausted table stay there.
  // Exit codes: 0 ok, 2 spun the CPU, 3 message not once, 4 not served after.
  const std::string log = std::filesystem::temp_directory_path() / ("conclab-emfile-" + std::to_string(::getpid()));
  conclab::Process child([&]() -> int {
    FILE* err = std::freopen(log.c_str(), "w", stderr);
    if (!err) return 10;
    conclab::ThreadingTCPServer<Upper> server("127.0.0.1", 0);
    std::thread loop([&] { server.serve_forever(); });
    // One request first: the loop has run every step of serving once, so
    // that UBSan's vptr check (which needs a descriptor on a first sight of
    // a type) has nothing new to look at while none is left.
    if (ask(server.server_address().port(), "warm") != "WARM") return 11;
    // ... and its thread has ended, closing its connection: closed after the
    // hogs below took every number, it would leave one free for accept().
    for (int i = 0; i < 1000 && server.active_threads() > 0; ++i) std::this_thread::sleep_for(10ms);
    if (server.active_threads() > 0) return 12;
    Socket c(conclab::Family::ipv4, conclab::Type::stream);  // made now, connected when none is left
    std::vector<int> hogs;
    for (int fd; (fd = ::dup(0)) >= 0;) hogs.push_back(fd);
    c.connect(server.server_address());
    rusage before{}, after{};
    ::getrusage(RUSAGE_SELF, &before);
    std::this_thread::sleep_for(400ms);  // the connection waits in the backlog all this time
    ::getrusage(RUSAGE_SELF, &after);
    const double cpu = conclab::to_seconds(std::chrono::seconds(after.ru_utime.tv_sec - before.ru_utime.tv_sec) +
                                           std::chrono::microseconds(after.ru_utime.tv_usec - before.ru_utime.tv_usec) +
                                           std::chrono::seconds(after.ru_stime.tv_sec - before.ru_stime.tv_sec) +
                                           std::chrono::microseconds(after.ru_stime.tv_usec - before.ru_stime.tv_usec));
    for (int fd : hogs) ::close(fd);
    c.send_all("back");
    const bool served = c.recv(10) == "BACK";
    server.shutdown();
    loop.join();
    std::fflush(stderr);
    if (cpu > 0.2) return 2;
    return served ? 0 : 4;
  });
  child.start();
  ASSERT_TRUE(child.join(60s)) << "the child hung";
  std::ifstream in(log);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::filesystem::remove(log);
  EXPECT_EQ(child.exitcode(), 0) << text;
  std::size_t count = 0;
  for (std::size_t at = 0; (at = text.find("Too many open files", at)) != std::string::npos; ++at) ++count;
  EXPECT_EQ(count, 1u) << text;
}

TEST(SocketServer, AStopSignalEndsServeForeverWithInterrupted) {
  conclab::Process child([]() -> int {
    conclab::stop_on_signals();
    conclab::ThreadingTCPServer<Upper> server("127.0.0.1", 0);
    std::thread killer([&] {
      (void)ask(server.server_address().port(), "x");
      ::kill(::getpid(), SIGTERM);
    });
    int outcome = 1;
    try {
      server.serve_forever();
    } catch (const conclab::Interrupted&) {
      outcome = 0;
    }
    killer.join();
    return outcome;
  });
  child.start();
  ASSERT_TRUE(child.join(30s)) << "serve_forever() never returned after SIGTERM";
  EXPECT_EQ(child.exitcode(), 0);
}

}  // namespace

namespace {

TEST(SocketServer, AStopSignalToTheForkingServerReachesItsChildren) {
  // `kill <server pid>` reaches the parent only; its children wait in recv()
  // on a silent client. server_close() sends the signal on, or it would wait
  // for them forever.
  conclab::Process child([]() -> int {
    conclab::stop_on_signals();
    int outcome = 1;
    {
      Socket silent;  // outlives the server: open while server_close() waits for the child
      conclab::ForkingTCPServer<Upper> server("127.0.0.1", 0);
      std::thread killer([&] {
        silent = conclab::create_connection("127.0.0.1", server.server_address().port(), 10s);
        std::this_thread::sleep_for(200ms);  // accepted, and its child forked, by then
        ::kill(::getpid(), SIGTERM);
      });
      try {
        server.serve_forever();
      } catch (const conclab::Interrupted&) {
        outcome = 0;
      }
      killer.join();
    }  // server_close(): the child serving `silent` is told to stop, and reaped
    return outcome;
  });
  child.start();
  if (!child.join(20s)) {
    child.kill();
    child.join();
    FAIL() << "the forking server waited forever for a child after SIGTERM";
  }
  EXPECT_EQ(child.exitcode(), 0);
}

}  // namespace
