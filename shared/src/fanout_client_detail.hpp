// What the two drivers of fanout_client.hpp share (fanout_client.cpp,
// fanout_client_fork.cpp): the outcome of one request, its kind and message,
// the tally that becomes the report, the target and its source addresses.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "conclab/fanout_client.hpp"
#include "conclab/socket.hpp"

namespace conclab::fanout::detail {

inline constexpr std::int64_t kMaxRequests = 10'000'000;       // the epoll driver's C * R
inline constexpr std::int64_t kMaxForkedRequests = 1'000'000;  // the forking driver's K * L

// Where a request was when it ended.
enum class Stage : std::int32_t { socket, bind, connect, send, recv };
// How it ended: none is "not done" (unfinished).
enum class Why : std::int32_t { none, ok, error, timeout, eof, too_much, mismatch };

struct Outcome {
  Why why = Why::none;
  Stage stage = Stage::connect;
  int err = 0;       // errno, for Why::error
  int received = 0;  // bytes read (for mismatch: the first differing byte)
  double latency_ms = 0;
};

// What a message names: the reply size, the timeout, the server.
struct RunContext {
  int bytes = 0;
  int timeout_ms = 0;
  std::string target{};
};

ErrorKind kind_of(const Outcome& o);
std::string message_of(const Outcome& o, const RunContext& run);

struct Tally {
  RunContext run;
  std::vector<double> latencies_ms{};
  std::array<std::int64_t, kErrorKinds> errors{};
  std::array<std::string, kErrorKinds> first_error{};
  void add(const Outcome& o);
  // The report of a run of `total` requests (the ones not added are unfinished).
  ClientReport report(double wall_s, std::int64_t total) &&;
};

struct Target {
  Address server;
  Family family = Family::ipv4;
  std::vector<Address> sources;  // empty: let the kernel choose (one source)
};

void validate(const ClientOptions& options);
Target resolve_target(const ClientOptions& options);
// A TCP socket for request number `index`, bound to its source address if
// there are several (IP_BIND_ADDRESS_NO_PORT); -1 with `out` set on failure.
// System calls only: a forked child of a threaded program may call it.
int open_socket(const Target& target, std::int64_t index, bool nonblocking, Outcome& out);

ClientReport run_forked(const ClientOptions& options, const Target& target, const RunContext& run);

}  // namespace conclab::fanout::detail
