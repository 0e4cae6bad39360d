// fanout_client.hpp: both drivers against small servers of this test on
// loopback (a thread accepting one connection after another), one server per
// kind of fault: every request ends counted in exactly one kind, nothing is
// dropped, no descriptor or child is left behind.
#include "conclab/fanout_client.hpp"

#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <atomic>
#include <chrono>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "conclab/process.hpp"
#include "conclab/socket.hpp"
#include "conclab/threading.hpp"
#include "proc_counts.hpp"

using namespace std::chrono_literals;
namespace fanout = conclab::fanout;
using fanout::ErrorKind;

namespace {

enum class Serve { good, reset, half, too_much, wrong_bytes, slow };

// An iterative fanout server in a thread: accept, read the request line,
// answer as `mode` says, wait for the client's close. Records each peer's host.
class TestServer {
 public:
  explicit TestServer(Serve mode) : mode_(mode), listener_(conclab::create_server("127.0.0.1", 0)) {
    thread_ = conclab::Thread([this] { serve(); });
    thread_.start();
  }
  ~TestServer() {
    ::shutdown(listener_.fileno(), SHUT_RDWR);  // wakes accept(): it fails, the loop ends
    thread_.join();
  }
  TestServer(const TestServer&) = delete;
  TestServer& operator=(const TestServer&) = delete;

  [[nodiscard]] int port() const { return listener_.address().port(); }
  std::map<std::string, int> peers() {
    std::lock_guard lock(mutex_);
    return peers_;
  }

 private:
  void serve() {
    for (;;) {
      conclab::Accepted accepted;
      try {
        accepted = listener_.accept();
      } catch (const std::exception&) {
        return;  // shut down
      }
      {
        std::lock_guard lock(mutex_);
        ++peers_[accepted.peer.host()];
      }
      try {
        answer(accepted.conn);
      } catch (const std::exception&) {
        // the client went away: the next one
      }
    }
  }

  void answer(conclab::Socket& conn) {
    conn.settimeout(10s);
    conclab::LineReader reader(conn);
    const auto line = reader.readline(fanout::kMaxRequestLine);
    if (!line) return;
    const int n = fanout::parse_count(*line, fanout::kLargestMaxBytes).value_or(0);
    std::string reply(fanout::reply(n));
    switch (mode_) {
      case Serve::good:
        break;
      case Serve::reset: {
        const linger now{.l_onoff = 1, .l_linger = 0};
        ::setsockopt(conn.fileno(), SOL_SOCKET, SO_LINGER, &now, sizeof now);
        return;  // the close sends RST
      }
      case Serve::half:
        conn.send_all(reply.substr(0, reply.size() / 2));
        return;  // closes after half
      case Serve::too_much:
        reply += "0123456789";
        break;
      case Serve::wrong_bytes:
        reply[reply.size() / 2] = '#';
        break;
      case Serve::slow:
        std::this_thread::sleep_for(100ms);
        break;
    }
    conn.send_all(reply);
    while (!conn.recv(4096).empty()) {
    }
  }

  Serve mode_;
  conclab::Socket listener_;
  conclab::Thread thread_{[] {}};
  std::mutex mutex_;
  std::map<std::string, int> peers_;
};

// A port where nothing listens: bound (so no one else takes it), never listening.
struct ClosedPort {
  conclab::Socket socket{conclab::Family::ipv4, conclab::Type::stream};
  ClosedPort() { socket.bind(conclab::Address::ip("127.0.0.1", 0)); }
  [[nodiscard]] int port() const { return socket.address().port(); }
};

// A listener that never accepts: connections complete in its backlog and get no answer.
struct Silent {
  conclab::Socket socket = conclab::create_server("127.0.0.1", 0);
  [[nodiscard]] int port() const { return socket.address().port(); }
};

enum class Driver { epoll, forking };

// 2 clients x 3 requests (epoll) or 2 children x 3 loops (forking): 6 requests.
fanout::ClientOptions six_requests(Driver driver, int port) {
  fanout::ClientOptions o;
  o.port = port;
  o.bytes = 1000;
  o.timeout = 2s;
  o.cap = 20s;
  if (driver == Driver::epoll) {
    o.clients = 2;
    o.requests = 3;
  } else {
    o.children = 2;
    o.loops = 3;
  }
  return o;
}

// Every request counted once: ok + errors + unfinished = all of them.
void expect_all_counted(const fanout::ClientReport& r, std::int64_t total) {
  EXPECT_EQ(r.ok + r.error_count() + r.unfinished, total) << r.summary_line();
  EXPECT_EQ(static_cast<std::int64_t>(r.latencies_ms.size()), r.ok);
}

// Only `kind` counted, `n` times, and its first message says `says`.
void expect_only(const fanout::ClientReport& r, ErrorKind kind, std::int64_t n, const std::string& says) {
  for (int k = 0; k < fanout::kErrorKinds; ++k) {
    const auto each = static_cast<ErrorKind>(k);
    EXPECT_EQ(r.count(each), each == kind ? n : 0) << fanout::error_key(each) << ": " << r.summary_line();
    if (each != kind) {
      EXPECT_EQ(r.first_error[static_cast<std::size_t>(k)], "");
    }
  }
  EXPECT_NE(r.first_error[static_cast<std::size_t>(kind)].find(says), std::string::npos)
      << r.first_error[static_cast<std::size_t>(kind)];
  EXPECT_EQ(r.unfinished, 0);
  EXPECT_FALSE(r.all_ok());
}

// Six requests against a server answering as `mode`: each one counted as `kind`.
void six_against(Serve mode, Driver driver, ErrorKind kind, const std::string& says) {
  TestServer server(mode);
  auto r = fanout::run_clients(six_requests(driver, server.port()));
  expect_only(r, kind, 6, says);
  expect_all_counted(r, 6);
}

// No child of this process is left, not even a zombie.
bool no_children_left() { return ::waitpid(-1, nullptr, WNOHANG) == -1 && errno == ECHILD; }

class BothDrivers : public testing::TestWithParam<Driver> {};
INSTANTIATE_TEST_SUITE_P(FanoutClient, BothDrivers, testing::Values(Driver::epoll, Driver::forking),
                         [](const auto& info) { return info.param == Driver::epoll ? "epoll" : "forking"; });

}  // namespace

TEST(FanoutClient, PercentilesAreNearestRank) {
  std::vector<double> hundred;
  for (int i = 1; i <= 100; ++i) hundred.push_back(i);
  EXPECT_EQ(fanout::percentile(hundred, 50), 50);
  EXPECT_EQ(fanout::percentile(hundred, 90), 90);
  EXPECT_EQ(fanout::percentile(hundred, 99), 99);
  EXPECT_EQ(fanout::percentile(hundred, 100), 100);
  EXPECT_EQ(fanout::percentile({1, 2, 3, 4}, 50), 2);
  EXPECT_EQ(fanout::percentile({1, 2, 3, 4}, 90), 4);
  EXPECT_EQ(fanout::percentile({7}, 99), 7);
  EXPECT_EQ(fanout::percentile({}, 50), 0);
}

TEST(FanoutClient, SummaryLineAndJsonHoldTheSameKeysAndValues) {
  fanout::ClientReport r;
  r.clients = 10;
  r.requests = 2;
  r.bytes = 4000;
  r.ok = 19;
  r.wall_s = 0.5;
  r.rps = 38;
  r.p50_ms = 1.25;
  r.p90_ms = 2;
  r.p99_ms = 3;
  r.max_ms = 4.5;
  r.errors[static_cast<int>(ErrorKind::reset)] = 1;
  r.fd_limit = 20000;
  EXPECT_EQ(r.summary_line(),
            "clients=10 requests=2 bytes=4000 ok=19 wall_s=0.500 rps=38.0 p50_ms=1.250 p90_ms=2.000 p99_ms=3.000 "
            "max_ms=4.500 refused=0 reset=1 timed_out=0 short=0 other=0 unfinished=0 fd_limit=20000");
  EXPECT_EQ(r.json(),
            R"({"clients": 10, "requests": 2, "bytes": 4000, "ok": 19, "wall_s": 0.500, "rps": 38.0, "p50_ms": 1.250, )"
            R"("p90_ms": 2.000, "p99_ms": 3.000, "max_ms": 4.500, "refused": 0, "reset": 1, "timed_out": 0, "short": 0, )"
            R"("other": 0, "unfinished": 0, "fd_limit": 20000})");
}

TEST_P(BothDrivers, EveryRequestOkAgainstAGoodServer) {
  TestServer server(Serve::good);
  auto r = fanout::run_clients(six_requests(GetParam(), server.port()));
  EXPECT_EQ(r.ok, 6) << r.summary_line();
  EXPECT_TRUE(r.all_ok());
  expect_all_counted(r, 6);
  EXPECT_EQ(r.clients, 2);
  EXPECT_EQ(r.requests, 3);
  EXPECT_GT(r.p50_ms, 0);
  EXPECT_LE(r.p50_ms, r.p90_ms);
  EXPECT_LE(r.p90_ms, r.p99_ms);
  EXPECT_LE(r.p99_ms, r.max_ms);
  EXPECT_GT(r.rps, 0);
  EXPECT_TRUE(no_children_left());
}

TEST_P(BothDrivers, AClosedPortIsRefused) {
  ClosedPort closed;
  auto r = fanout::run_clients(six_requests(GetParam(), closed.port()));
  expect_only(r, ErrorKind::refused, 6, "connect: Connection refused; 127.0.0.1:");
  expect_all_counted(r, 6);
  EXPECT_TRUE(no_children_left());
}

TEST_P(BothDrivers, ALingerZeroCloseIsAReset) { six_against(Serve::reset, GetParam(), ErrorKind::reset, "Connection reset by peer"); }

TEST_P(BothDrivers, AReplyCutShortIsShort) { six_against(Serve::half, GetParam(), ErrorKind::short_reply, "the server closed after 500 of 1000 bytes"); }

TEST_P(BothDrivers, MoreThanAskedForIsShort) { six_against(Serve::too_much, GetParam(), ErrorKind::short_reply, "more than 1000 bytes (1010 read)"); }

TEST_P(BothDrivers, WrongBytesAreOther) { six_against(Serve::wrong_bytes, GetParam(), ErrorKind::other, "reply byte 500 differs"); }

TEST_P(BothDrivers, NoAnswerTimesOut) {
  Silent silent;
  auto o = six_requests(GetParam(), silent.port());
  o.timeout = 100ms;
  auto r = fanout::run_clients(o);
  expect_only(r, ErrorKind::timed_out, 6, "while reading (0 of 1000 bytes)");
  expect_all_counted(r, 6);
  EXPECT_GE(r.wall_s, 0.3 - 0.01);  // three requests after one another, each waiting 100 ms
}

TEST_P(BothDrivers, TheCapLeavesTheRestUnfinished) {
  TestServer server(Serve::slow);  // 100 ms a request, one at a time
  auto o = six_requests(GetParam(), server.port());
  o.cap = 350ms;
  auto r = fanout::run_clients(o);
  EXPECT_GE(r.ok, 1) << r.summary_line();
  EXPECT_GE(r.unfinished, 2) << r.summary_line();
  EXPECT_EQ(r.error_count(), 0) << r.summary_line();
  expect_all_counted(r, 6);
  EXPECT_FALSE(r.all_ok());
  EXPECT_GE(r.wall_s, 0.35 - 0.001);  // the run ends at the cap, not at its last request
  EXPECT_LT(r.wall_s, 0.5);
  EXPECT_TRUE(no_children_left());
}

TEST(FanoutClient, RequestsThatFailAtOnceAreCountedNotLeftUnfinished) {
  // socket() out of descriptors fails at once, not through epoll: with none
  // open and clients still to start, the run must go on starting them (16 a
  // turn) until each has ended, each an error. In a child: its limit and its
  // exhausted table stay there. Exit codes: 0 ok, 2 some left unfinished,
  // 3 the run took its cap, 4 not every request an error, 5 no EMFILE said.
  ClosedPort closed;
  const int port = closed.port();
  conclab::Process child([port]() -> int {
    rlimit limit{256, 256};
    if (::setrlimit(RLIMIT_NOFILE, &limit) < 0) return 10;
    std::vector<int> hogs;
    for (int fd; (fd = ::dup(0)) >= 0;) hogs.push_back(fd);
    if (hogs.empty()) return 11;
    ::close(hogs.back());  // room for the driver's epoll descriptor, none for a socket
    hogs.pop_back();
    fanout::ClientOptions o;
    o.port = port;
    o.clients = 40;
    o.requests = 2;
    o.timeout = 2s;
    o.cap = 30s;
    const auto r = fanout::run_clients(o);
    for (int fd : hogs) ::close(fd);
    if (r.unfinished != 0) return 2;
    if (r.wall_s >= 30) return 3;
    if (r.error_count() != 80 || r.ok != 0) return 4;
    return r.first_error[static_cast<std::size_t>(ErrorKind::other)].find("Too many open files") == std::string::npos ? 5 : 0;
  });
  child.start();
  ASSERT_TRUE(child.join(60s)) << "the child hung";
  EXPECT_EQ(child.exitcode(), 0);
}

TEST_P(BothDrivers, NoDescriptorIsLeft) {
  const int before = conclab::test::open_descriptors();
  {
    TestServer server(Serve::good);
    (void)fanout::run_clients(six_requests(GetParam(), server.port()));
    ClosedPort closed;
    (void)fanout::run_clients(six_requests(GetParam(), closed.port()));
    Silent silent;
    auto o = six_requests(GetParam(), silent.port());
    o.timeout = 50ms;
    (void)fanout::run_clients(o);
  }
  EXPECT_EQ(conclab::test::open_descriptors(), before);
}

TEST_P(BothDrivers, SourcesSpreadOverLoopbackAddresses) {
  TestServer server(Serve::good);
  auto o = six_requests(GetParam(), server.port());
  o.sources = 3;
  auto r = fanout::run_clients(o);
  EXPECT_EQ(r.ok, 6) << r.summary_line();
  EXPECT_EQ(r.sources, 3);
  const std::map<std::string, int> expected{{"127.0.0.1", 2}, {"127.0.0.2", 2}, {"127.0.0.3", 2}};
  EXPECT_EQ(server.peers(), expected);
}

TEST(FanoutClient, OneSourceLetsTheKernelChoose) {
  TestServer server(Serve::good);
  auto o = six_requests(Driver::epoll, server.port());
  o.sources = 1;
  auto r = fanout::run_clients(o);
  EXPECT_EQ(r.ok, 6);
  EXPECT_EQ(server.peers(), (std::map<std::string, int>{{"127.0.0.1", 6}}));
}

TEST(FanoutClient, FiveHundredConnectionsAtOnce) {
  const int before = conclab::test::open_descriptors();
  {
    TestServer server(Serve::good);  // counted after it has closed its last connection too
    fanout::ClientOptions o;
    o.port = server.port();
    o.clients = 500;
    o.requests = 2;
    o.bytes = 4000;
    o.timeout = 10s;
    o.cap = 30s;
    auto r = fanout::run_clients(o);
    EXPECT_EQ(r.ok, 1000) << r.summary_line();
    EXPECT_TRUE(r.all_ok());
    EXPECT_EQ(r.max_open, 500);
    EXPECT_TRUE(r.notes.empty());
    EXPECT_GE(r.fd_limit, 500 + fanout::kDescriptorMargin);
  }
  EXPECT_EQ(conclab::test::open_descriptors(), before);
}

TEST(FanoutClient, BadOptionsAreRefused) {
  fanout::ClientOptions o;
  o.port = 0;
  EXPECT_THROW((void)fanout::run_clients(o), std::invalid_argument);
  o.port = 9;
  o.bytes = 0;
  EXPECT_THROW((void)fanout::run_clients(o), std::invalid_argument);
  o.bytes = 10;
  o.host = "::1";
  o.sources = 4;
  EXPECT_THROW((void)fanout::run_clients(o), std::invalid_argument);
}
