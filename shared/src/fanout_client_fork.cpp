// The forking client of fanout_client.hpp (UNP 30.2's client): K children,
// each doing L requests one after the other with blocking sockets. Each
// request's outcome goes into its own row of a SharedArray, written by the
// child that did it and read by the parent once every child is reaped.
// The child makes system calls only (socket, connect, send, recv, close,
// clock_gettime): no allocation, no lock, so a threaded caller may fork it.
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <memory>
#include <vector>

#include "conclab/process.hpp"
#include "conclab/shm.hpp"
#include "fanout_client_detail.hpp"

namespace conclab::fanout::detail {

namespace {

// One row per request: why it ended (0: not done), stage, errno, bytes read, latency in ns.
enum Field : std::size_t { kWhy, kStage, kErr, kReceived, kLatencyNs, kFields };

std::int64_t now_ns() {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

struct ChildPlan {
  const Target* target;
  std::string_view request;
  std::string_view expected;
  int bytes;
  timeval timeout;
  std::int64_t cap_end_ns;
  std::int64_t* rows;  // this child's L rows in the shared array
  std::int64_t first_index;
  int loops;
  char* buffer;
  std::size_t buffer_size;
};

// One blocking request: its outcome (without the latency).
Outcome one_request(const ChildPlan& plan, std::int64_t index) {
  Outcome out;
  const int fd = open_socket(*plan.target, index, false, out);
  if (fd < 0) return out;
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &plan.timeout, sizeof plan.timeout);  // bounds connect and send
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &plan.timeout, sizeof plan.timeout);
  auto fail = [&](Outcome o) {
    ::close(fd);
    return o;
  };
  auto error_or_timeout = [&](Stage stage, int err, int received) {
    if (err == EAGAIN || (stage == Stage::connect && err == EINPROGRESS))
      return fail({.why = Why::timeout, .stage = stage, .received = received});
    return fail({.why = Why::error, .stage = stage, .err = err, .received = received});
  };
  while (::connect(fd, plan.target->server.data(), plan.target->server.size()) < 0)
    if (errno != EINTR) return error_or_timeout(Stage::connect, errno, 0);
  std::size_t sent = 0;
  while (sent < plan.request.size()) {
    const ssize_t n = ::send(fd, plan.request.data() + sent, plan.request.size() - sent, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return error_or_timeout(Stage::send, errno, 0);
    sent += static_cast<std::size_t>(n);
  }
  int received = 0;
  while (received < plan.bytes) {
    const ssize_t n = ::recv(fd, plan.buffer, plan.buffer_size, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return error_or_timeout(Stage::recv, errno, received);
    if (n == 0) return fail({.why = Why::eof, .stage = Stage::recv, .received = received});
    const auto got = static_cast<std::size_t>(n);
    const auto mine = std::min<std::size_t>(got, static_cast<std::size_t>(plan.bytes - received));
    for (std::size_t k = 0; k < mine; ++k)
      if (plan.buffer[k] != plan.expected[static_cast<std::size_t>(received) + k])
        return fail({.why = Why::mismatch, .stage = Stage::recv, .received = received + static_cast<int>(k)});
    received += static_cast<int>(got);
    if (got > mine) return fail({.why = Why::too_much, .stage = Stage::recv, .received = received});
  }
  ::close(fd);
  return {.why = Why::ok, .stage = Stage::recv, .received = received};
}

void child_main(const ChildPlan& plan) {
  for (int i = 0; i < plan.loops; ++i) {
    const std::int64_t start = now_ns();
    if (start >= plan.cap_end_ns) return;  // the rest stays "not done": unfinished
    const Outcome out = one_request(plan, plan.first_index + i);
    std::int64_t* row = plan.rows + static_cast<std::size_t>(i) * kFields;
    row[kStage] = static_cast<std::int64_t>(out.stage);
    row[kErr] = out.err;
    row[kReceived] = out.received;
    row[kLatencyNs] = now_ns() - start;
    row[kWhy] = static_cast<std::int64_t>(out.why);  // last: a child killed before it leaves "not done"
  }
}

}  // namespace

ClientReport run_forked(const ClientOptions& options, const Target& target, const RunContext& run) {
  const int k_children = options.children;
  const int loops = options.loops;
  const auto total = static_cast<std::size_t>(k_children) * static_cast<std::size_t>(loops);
  SharedArray<std::int64_t> rows(total * kFields, 0);
  const std::string request = fanout::request(options.bytes);
  const std::string_view expected = fanout::reply(options.bytes);  // built before fork: the child only reads it
  std::vector<char> buffer(std::size_t{1} << 16);
  const auto timeout_us = std::chrono::duration_cast<std::chrono::microseconds>(options.timeout).count();
  const timeval timeout{.tv_sec = static_cast<time_t>(timeout_us / 1'000'000),
                        .tv_usec = static_cast<suseconds_t>(timeout_us % 1'000'000)};

  const std::int64_t start_ns = now_ns();
  const std::int64_t cap_end_ns = start_ns + std::chrono::duration_cast<std::chrono::nanoseconds>(options.cap).count();
  std::vector<std::unique_ptr<Process>> children;
  children.reserve(static_cast<std::size_t>(k_children));
  for (int c = 0; c < k_children; ++c) {
    const ChildPlan plan{.target = &target,
                         .request = request,
                         .expected = expected,
                         .bytes = options.bytes,
                         .timeout = timeout,
                         .cap_end_ns = cap_end_ns,
                         .rows = rows.begin() + static_cast<std::size_t>(c) * static_cast<std::size_t>(loops) * kFields,
                         .first_index = static_cast<std::int64_t>(c) * loops,
                         .loops = loops,
                         .buffer = buffer.data(),
                         .buffer_size = buffer.size()};
    children.push_back(std::make_unique<Process>([plan] { child_main(plan); }));
    children.back()->start();
  }
  // Wait for each until the cap; past it, what still runs is killed (its
  // request in flight and the rest count as unfinished).
  for (auto& child : children) {
    const auto left = std::chrono::nanoseconds(std::max<std::int64_t>(0, cap_end_ns - now_ns()));
    if (!child->join(left)) {
      child->kill();
      child->join();
    }
  }
  const double wall_s = static_cast<double>(std::min(now_ns(), cap_end_ns) - start_ns) / 1e9;

  Tally tally{.run = run};
  tally.latencies_ms.reserve(total);
  for (std::size_t i = 0; i < total; ++i) {
    const std::int64_t* row = rows.begin() + i * kFields;
    tally.add({.why = static_cast<Why>(row[kWhy]),
               .stage = static_cast<Stage>(row[kStage]),
               .err = static_cast<int>(row[kErr]),
               .received = static_cast<int>(row[kReceived]),
               .latency_ms = static_cast<double>(row[kLatencyNs]) / 1e6});
  }
  ClientReport r = std::move(tally).report(wall_s, static_cast<std::int64_t>(total));
  r.clients = k_children;
  r.requests = loops;
  r.max_open = k_children;
  return r;
}

}  // namespace conclab::fanout::detail
