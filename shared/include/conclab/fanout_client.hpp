// fanout_client.hpp — the client driver of the fan-out benchmark (issue 9):
// C clients at once against a fanout server, each doing R requests of B
// bytes one after the other (a new connection per request, fanout.hpp's
// protocol: connect, send "B\n", read exactly B bytes, close first).
//
//   conclab::fanout::ClientOptions options{.port = 9877, .clients = 100, .requests = 10, .bytes = 4000};
//   auto report = conclab::fanout::run_clients(options);
//   fmt::print("{}\n", report.summary_line());   // clients=100 requests=10 ... ok=1000 ...
//
// Two drivers, one report:
// - the epoll driver (default): every connection non-blocking, ONE epoll loop
//   in the calling thread (connect in progress -> writable -> send the
//   request -> readable -> read B bytes -> close), so the client costs a few
//   system calls per request and is never what limits a server;
// - the book's forking client (children > 0, UNP 30.2): K children, each
//   doing L requests one after the other with blocking sockets; latencies and
//   outcomes come back through a SharedArray. The children use system calls
//   only (no allocation, no lock), so a threaded program may call it too.
//
// Every request ends in exactly one of: ok, refused (ECONNREFUSED), reset
// (ECONNRESET, EPIPE), timed_out (no progress for `timeout`: nothing
// connected, sent or read), short (the server closed before B bytes, or sent
// more than B: seen when the extra bytes come with the last ones), other
// (anything else: EADDRNOTAVAIL when the ports run out, a reply whose bytes
// differ from fanout::reply(B) — checked as they arrive —, ...), or
// unfinished (not done when the run reached its `cap`): ok + errors +
// unfinished == clients * requests, nothing is dropped. The first message of
// each kind is kept. Latency: from socket() to the last byte, of the ok
// requests; percentiles are exact (nearest rank over every latency).
//
// Descriptors: run_clients raises the RLIMIT_NOFILE soft limit to the hard
// limit. When that is still less than C + kDescriptorMargin, it runs with
// what it can — at most limit - margin connections open at once, the other
// clients waiting for a free one, every request still done — and says so in
// `notes` (fanout-client prints them on stderr) and `max_open`; fd_limit= in
// the line. A benchmark row that cannot get its C is marked, not lost.
//
// Ephemeral ports: the client closes first, so each request leaves a
// TIME_WAIT socket on the client's side for 60 s, holding one local port of
// the 4-tuple (source, port, server, server port): toward one server address
// a source address has the 28,232 ports of ip_local_port_range. Measured
// here (kernel 6.18, runs of 20,000 requests at C = 50, floor server, each
// in a fresh network namespace): with ONE source and tcp_tw_reuse = 0 (the
// Linux default off loopback), the first run already slows to 1,300
// requests/s (connect() searches a range filling up with TIME_WAIT) and the
// second fails (EADDRNOTAVAIL, then unfinished at the cap); with tw_reuse = 2
// (this machine: reuse on loopback once a second old) one source runs, but
// at 16,000/s where 4 or more sources reach 26,000-29,000/s; 4 sources with
// tw_reuse = 0 collapse at the 6th run (18,000 TIME_WAIT per source). So
// requests are spread round-robin over 127.0.0.1 .. 127.0.0.N (bind with
// IP_BIND_ADDRESS_NO_PORT before connect: the port is then picked per
// 4-tuple at connect, not reserved per source at bind). The default is
// kDefaultSources = 64: the kernel keeps at most tcp_max_tw_buckets (131,072
// here) sockets in TIME_WAIT, so 64 sources hold at most ~2,000 each (7% of a
// source's ports) however many runs come back to back; measured: 10 runs of
// 20,000 with tw_reuse = 0, all ok at 25,000-29,000/s. IPv4 only; an IPv6
// server (::1 is one address) gets one source.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "conclab/fanout.hpp"

namespace conclab::fanout {

// Descriptors kept for the rest of the process (stdio, epoll, a server in
// the same process, ...) when the limit bounds the connections open at once.
inline constexpr int kDescriptorMargin = 64;
// The most source addresses: 127.0.0.1 .. 127.0.0.250; the default (above).
inline constexpr int kMaxSources = 250;
inline constexpr int kDefaultSources = 64;

struct ClientOptions {
  std::string host = "127.0.0.1";
  int port = 9877;  // UNP's SERV_PORT
  int clients = 1;   // C: connections at once (epoll driver)
  int requests = 1;  // R: requests per client, one after the other
  int bytes = 4000;  // B: the reply size asked for
  std::chrono::milliseconds timeout{5000};  // per request: the longest time without progress
  std::chrono::milliseconds cap{60000};     // the whole run
  int sources = 0;   // 0: kDefaultSources (IPv4) or 1 (IPv6); N: 127.0.0.1 .. 127.0.0.N
  int children = 0;  // K > 0: the forking client, K children doing `loops` requests each
  int loops = 1;     // L
};

enum class ErrorKind : int { refused, reset, timed_out, short_reply, other };
inline constexpr int kErrorKinds = 5;
// "refused", "reset", "timed_out", "short", "other": the keys of the line.
const char* error_key(ErrorKind kind);

struct ClientReport {
  int clients = 0;  // C (K for the forking client)
  int requests = 0;  // R (L)
  int bytes = 0;
  std::int64_t ok = 0;
  double wall_s = 0;  // the first connect to the last request's end (or the cap)
  double rps = 0;     // ok / wall_s
  double p50_ms = 0, p90_ms = 0, p99_ms = 0, max_ms = 0;  // of the ok requests
  std::array<std::int64_t, kErrorKinds> errors{};          // by ErrorKind
  std::array<std::string, kErrorKinds> first_error;        // the first message of each kind
  std::int64_t unfinished = 0;
  int fd_limit = 0;   // RLIMIT_NOFILE after raising it
  int max_open = 0;   // the most connections open at once (< clients: the limit bounded it)
  double open_s = 0;  // epoll driver: until the first max_open connections were all established
  int sources = 1;    // source addresses used
  std::vector<std::string> notes;  // what the caller should tell (the descriptor limit)
  std::vector<double> latencies_ms;  // every ok request's latency, in completion order

  [[nodiscard]] std::int64_t error_count() const;
  [[nodiscard]] std::int64_t count(ErrorKind kind) const { return errors[static_cast<int>(kind)]; }
  // Every request ok, none unfinished.
  [[nodiscard]] bool all_ok() const { return error_count() == 0 && unfinished == 0; }
  // clients=C requests=R bytes=B ok=N wall_s=W rps=X p50_ms= p90_ms= p99_ms= max_ms=
  // refused= reset= timed_out= short= other= unfinished= fd_limit=F
  [[nodiscard]] std::string summary_line() const;
  // The same keys and values as a JSON object (one line).
  [[nodiscard]] std::string json() const;
};

// Runs the clients (the epoll driver, or the forking one when children > 0).
// Throws std::invalid_argument for options out of range (or sources > 1 toward
// an IPv6 server), ResolveError for a host that does not resolve, and
// std::system_error when a call the whole run needs fails (epoll_create, fork);
// everything that happens to one request is counted instead.
ClientReport run_clients(const ClientOptions& options);

// The nearest-rank percentile (0 < p <= 100) of `sorted` (ascending): the
// value at rank ceil(p / 100 * n); 0 for an empty set.
double percentile(const std::vector<double>& sorted, double p);

}  // namespace conclab::fanout
