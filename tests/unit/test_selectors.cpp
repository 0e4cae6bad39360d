#include "conclab/selectors.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/select.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <string>
#include <thread>
#include <vector>

#include "conclab/clock.hpp"
#include "conclab/process.hpp"
#include "conclab/signals.hpp"
#include "conclab/socket.hpp"

using namespace std::chrono_literals;
using conclab::Backend;
using conclab::EVENT_READ;
using conclab::EVENT_WRITE;
using conclab::Selector;

namespace {

class EveryBackend : public ::testing::TestWithParam<Backend> {};

std::string backend_param_name(const ::testing::TestParamInfo<Backend>& info) {
  std::string name(conclab::backend_name(info.param));
  std::erase(name, '-');
  return name;
}

// fd -> events of one select().
std::vector<std::pair<int, unsigned>> ready(Selector<int>& sel, std::chrono::nanoseconds timeout) {
  std::vector<std::pair<int, unsigned>> out;
  for (auto& [key, events] : sel.select(timeout)) out.emplace_back(key.fd, events);
  return out;
}

TEST_P(EveryBackend, ReportsReadAndWriteReadinessWithTheData) {
  auto [a, b] = conclab::socketpair();
  Selector<int> sel(GetParam());
  EXPECT_EQ(sel.backend(), GetParam());
  sel.register_fd(a.fileno(), EVENT_READ, 7);
  EXPECT_TRUE(ready(sel, 0ms).empty()) << "nothing was sent yet";
  b.send_all("x");
  auto got = sel.select(1s);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].key.fd, a.fileno());
  EXPECT_EQ(got[0].key.data, 7);
  EXPECT_EQ(got[0].events, EVENT_READ);
  // Write interest: a fresh socket can be written at once.
  sel.modify(a.fileno(), EVENT_READ | EVENT_WRITE, 8);
  auto both = ready(sel, 1s);
  ASSERT_EQ(both.size(), 1u);
  EXPECT_EQ(both[0].second, EVENT_READ | EVENT_WRITE);
  EXPECT_EQ(sel.get_key(a.fileno()).data, 8);
  auto key = sel.unregister(a.fileno());
  EXPECT_EQ(key.events, EVENT_READ | EVENT_WRITE);
  EXPECT_FALSE(sel.contains(a.fileno()));
  EXPECT_TRUE(ready(sel, 0ms).empty());
}

TEST_P(EveryBackend, APeerThatClosedIsReportedReadable) {
  auto [a, b] = conclab::socketpair();
  Selector<int> sel(GetParam());
  sel.register_fd(a.fileno(), EVENT_READ);
  b.close();
  auto got = ready(sel, 1s);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].second, EVENT_READ);  // the recv() that follows returns "": the end
  EXPECT_EQ(a.recv(10), "");
}

TEST_P(EveryBackend, MisuseIsAClearError) {
  auto [a, b] = conclab::socketpair();
  Selector<int> sel(GetParam());
  EXPECT_THROW(sel.register_fd(-1, EVENT_READ), conclab::SelectorError);
  EXPECT_THROW(sel.register_fd(a.fileno(), 0), conclab::SelectorError);
  EXPECT_THROW(sel.register_fd(a.fileno(), 4), conclab::SelectorError);
  sel.register_fd(a.fileno(), EVENT_READ);
  try {
    sel.register_fd(a.fileno(), EVENT_WRITE);
    FAIL() << "registered twice";
  } catch (const conclab::SelectorError& e) {
    EXPECT_NE(std::string(e.what()).find("already registered"), std::string::npos) << e.what();
  }
  EXPECT_THROW(sel.unregister(b.fileno()), conclab::SelectorError);
  EXPECT_THROW(sel.modify(b.fileno(), EVENT_READ), conclab::SelectorError);
  EXPECT_THROW((void)sel.get_key(b.fileno()), conclab::SelectorError);
}

TEST_P(EveryBackend, ADescriptorAboveFdSetSizeOnlySelectRefuses) {
  auto [a, b] = conclab::socketpair();
  const int high = FD_SETSIZE + 100;
  ASSERT_EQ(::dup2(a.fileno(), high), high) << "the descriptor limit is below " << high;
  Selector<int> sel(GetParam());
  if (GetParam() == Backend::select) {
    try {
      sel.register_fd(high, EVENT_READ);
      FAIL() << "select took a descriptor >= FD_SETSIZE";
    } catch (const conclab::SelectorError& e) {
      EXPECT_NE(std::string(e.what()).find("FD_SETSIZE"), std::string::npos) << e.what();
    }
    EXPECT_FALSE(sel.contains(high));
  } else {
    sel.register_fd(high, EVENT_READ);
    b.send_all("x");
    auto got = ready(sel, 1s);
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0].first, high);
    sel.unregister(high);
  }
  ::close(high);
}

TEST_P(EveryBackend, ATimerBoundsTheWaitAndRunsFromSelect) {
  Selector<int> sel(GetParam());
  int fired = 0;
  sel.call_later(50ms, [&] { ++fired; });
  const auto cancelled = sel.call_later(10ms, [&] { fired += 100; });
  EXPECT_TRUE(sel.cancel_timer(cancelled));
  EXPECT_FALSE(sel.cancel_timer(cancelled));
  conclab::Stopwatch clock;
  while (fired == 0) EXPECT_TRUE(sel.select().empty());  // no timeout: only the timer ends the wait
  const double elapsed = clock.seconds();
  EXPECT_EQ(fired, 1);
  EXPECT_GE(elapsed, 0.045);
  EXPECT_LT(elapsed, 1.0);
  EXPECT_EQ(sel.timers(), 0u);
}

TEST_P(EveryBackend, ATimeoutReturnsEmpty) {
  auto [a, b] = conclab::socketpair();
  Selector<int> sel(GetParam());
  sel.register_fd(a.fileno(), EVENT_READ);
  conclab::Stopwatch clock;
  EXPECT_TRUE(ready(sel, 30ms).empty());
  EXPECT_GE(clock.seconds(), 0.025);
}

INSTANTIATE_TEST_SUITE_P(Selectors, EveryBackend,
                         ::testing::Values(Backend::select, Backend::poll, Backend::epoll, Backend::epoll_edge),
                         backend_param_name);

TEST(Selectors, EdgeTriggeredReportsOnceUntilDrainedLevelTriggeredAgain) {
  for (Backend backend : {Backend::epoll, Backend::epoll_edge}) {
    auto [a, b] = conclab::socketpair();
    Selector<int> sel(backend);
    sel.register_fd(a.fileno(), EVENT_READ);
    b.send_all("0123456789");
    EXPECT_EQ(ready(sel, 1s).size(), 1u);
    EXPECT_EQ(a.recv(4), "0123");  // six bytes left unread
    const bool again = !ready(sel, 50ms).empty();
    EXPECT_EQ(again, backend == Backend::epoll) << conclab::backend_name(backend);
    b.send_all("!");  // a new edge
    EXPECT_EQ(ready(sel, 1s).size(), 1u) << conclab::backend_name(backend);
  }
}

TEST(Selectors, NamesRoundTripAndAnUnknownOneSaysTheChoices) {
  for (Backend b : conclab::kBackends) EXPECT_EQ(conclab::backend_from_name(conclab::backend_name(b)), b);
  EXPECT_EQ(conclab::backend_from_name("epoll_edge"), Backend::epoll_edge);
  try {
    (void)conclab::backend_from_name("kqueue");
    FAIL();
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("select, poll, epoll, epoll-edge"), std::string::npos) << e.what();
  }
}

TEST(Selectors, AStopSignalEndsTheWaitWithInterrupted) {
  // In a child, so that the handler does not stay in this test process.
  conclab::Process child([] {
    conclab::stop_on_signals();
    auto [a, b] = conclab::socketpair();
    Selector<int> sel(Backend::poll);
    sel.register_fd(a.fileno(), EVENT_READ);
    std::thread killer([] {
      std::this_thread::sleep_for(50ms);
      ::kill(::getpid(), SIGTERM);
    });
    int outcome = 1;
    try {
      sel.select();
      outcome = 2;
    } catch (const conclab::Interrupted&) {
      outcome = 0;
    }
    killer.join();
    return outcome;
  });
  child.start();
  if (!child.join(20s)) {
    child.kill();
    child.join();
    FAIL() << "select() never woke up after SIGTERM";
  }
  EXPECT_EQ(child.exitcode(), 0);
}

}  // namespace
