// Unit tests of fdpass.hpp (descriptors over a Unix socket) and of the
// reusable parts of server_designs.hpp (the model list, the summary line,
// one connection served on a blocking socket).
#include "conclab/server_designs.hpp"

#include <gtest/gtest.h>
#include <sys/socket.h>

#include <chrono>
#include <stdexcept>
#include <string>
#include <thread>

#include "conclab/fdpass.hpp"
#include "conclab/process.hpp"
#include "conclab/socket.hpp"
#include "proc_counts.hpp"

using namespace std::chrono_literals;
using conclab::Socket;
namespace fanout = conclab::fanout;

namespace {

// A connected TCP pair over loopback: {client, server side}.
std::pair<Socket, Socket> tcp_pair() {
  auto listener = conclab::create_server("127.0.0.1", 0);
  auto client = conclab::create_connection("127.0.0.1", listener.address().port(), 5s);
  auto [conn, peer] = listener.accept();
  return {std::move(client), std::move(conn)};
}

TEST(FdPass, AConnectionPassedToAChildIsServedThere) {
  auto [client, conn] = tcp_pair();
  auto [parent_end, child_end] = conclab::socketpair();
  const int fd = child_end.fileno();
  conclab::Process child([fd]() -> int {
    Socket channel{conclab::unique_fd(fd)};
    auto passed = conclab::recv_fd(channel);
    if (!passed || passed->tag != 'x') return 3;
    passed->socket.send_all("served by the child");
    return 0;
  });
  child.set_pass_fds({fd}).start();
  child_end.close();
  conclab::send_fd(parent_end, conn, 'x');
  conn.close();  // the child has its own copy now
  client.settimeout(5s);
  std::string got;
  while (got.size() < 19) {
    std::string part = client.recv(64);
    if (part.empty()) break;
    got += part;
  }
  EXPECT_EQ(got, "served by the child");
  child.join();
  EXPECT_EQ(child.exitcode(), 0);
}

TEST(FdPass, TheReceivedSocketIsAWorkingCopyAndNothingLeaks) {
  auto [parent_end, child_end] = conclab::socketpair();
  const int before = conclab::test::open_descriptors();
  for (int i = 0; i < 20; ++i) {
    auto [client, conn] = tcp_pair();
    conclab::send_fd(parent_end, conn);
    auto passed = conclab::recv_fd(child_end);
    ASSERT_TRUE(passed);
    EXPECT_EQ(passed->tag, 'F');
    EXPECT_NE(passed->socket.fileno(), conn.fileno());
    EXPECT_EQ(passed->socket.family(), conclab::Family::ipv4);
    passed->socket.send_all("hi");
    client.settimeout(5s);
    EXPECT_EQ(client.recv_exact(2), "hi");
  }
  EXPECT_EQ(conclab::test::open_descriptors(), before);
}

TEST(FdPass, EndOfTheChannelIsNullopt) {
  auto [parent_end, child_end] = conclab::socketpair();
  parent_end.close();
  EXPECT_FALSE(conclab::recv_fd(child_end).has_value());
}

TEST(FdPass, AMessageWithoutADescriptorIsAnError) {
  auto [parent_end, child_end] = conclab::socketpair();
  parent_end.send_all("x");
  EXPECT_THROW((void)conclab::recv_fd(child_end), conclab::SocketError);
}

TEST(FdPass, DescriptorsInFlightAreClosedWithTheChannel) {
  const int before = conclab::test::open_descriptors();
  {
    auto [parent_end, child_end] = conclab::socketpair();
    auto [client, conn] = tcp_pair();
    conclab::send_fd(parent_end, conn);
    conclab::send_fd(parent_end, conn);
  }  // never received
  EXPECT_EQ(conclab::test::open_descriptors(), before);
}

TEST(ServerDesigns, EveryModelIsListedWithItsDesign) {
  const auto models = fanout::server_models();
  EXPECT_EQ(models.size(), 16u);
  for (auto model : models) {
    EXPECT_TRUE(fanout::is_server_model(model)) << model;
    EXPECT_FALSE(fanout::model_design(model).empty()) << model;
  }
  for (auto model : {"iterative", "prefork-fdpass", "prethread-main-accept", "epoll-threads", "floor"})
    EXPECT_TRUE(fanout::is_server_model(model)) << model;
  EXPECT_FALSE(fanout::is_server_model("epol"));
  EXPECT_THROW((void)fanout::model_design("nonesuch"), std::invalid_argument);
  auto listener = conclab::create_server("127.0.0.1", 0);
  EXPECT_THROW((void)fanout::serve("nonesuch", listener, {}), std::invalid_argument);
}

TEST(ServerDesigns, TheSummaryLine) {
  fanout::ServerReport r{.model = "prefork-mutex", .workers = 3, .served = 6, .refused = 1,
                         .per_worker = {1, 2, 3}, .cpu_user_s = 0.25, .cpu_sys_s = 0.5,
                         .maxrss_kb = 100, .children_maxrss_kb = 50};
  EXPECT_EQ(fanout::summary_line(r),
            "model=prefork-mutex workers=3 served=6 refused=1 cpu_user_s=0.250 cpu_sys_s=0.500 cpu_s=0.750 "
            "maxrss_kb=100 children_maxrss_kb=50 per_worker=1,2,3");
  r.per_worker.clear();
  EXPECT_TRUE(fanout::summary_line(r).ends_with(" per_worker=-"));
}

// serve_connection() on the server side of a pair, the client in a thread.
bool serve_one(const std::string& request, std::string* answer, bool close_after = true,
               std::chrono::milliseconds idle = 5000ms) {
  auto [client, conn] = tcp_pair();
  std::thread talk([&, c = std::move(client)]() mutable {
    c.settimeout(5s);
    if (!request.empty()) c.send_all(request);
    std::string got;
    try {
      for (std::string part; !(part = c.recv(65536)).empty();) {
        got += part;
        if (close_after && got.size() >= 5) break;
      }
    } catch (const std::exception&) {
    }
    *answer = got;
  });
  fanout::ServerOptions options;
  options.idle = idle;
  const bool served = fanout::serve_connection(conn, options);
  conn.close();
  talk.join();
  return served;
}

TEST(ServerDesigns, ServeConnectionAnswersTheCountAndRefusesTheRest) {
  std::string answer;
  EXPECT_TRUE(serve_one("5\n", &answer));
  EXPECT_EQ(answer, "01234");
  EXPECT_TRUE(serve_one("5\r\n", &answer));
  EXPECT_EQ(answer, "01234");
  for (const std::string bad : {"x\n", "0\n", "16385\n", "-1\n", "12345678901234567890\n", "\n"}) {
    EXPECT_FALSE(serve_one(bad, &answer, false)) << bad;
    EXPECT_EQ(answer, "") << bad;
  }
  // Silent: closed after the idle time, refused.
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_FALSE(serve_one("", &answer, false, 100ms));
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 3s);
}

}  // namespace
