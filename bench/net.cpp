// net/... — loopback networking with conclab's socket.hpp, each row beside its
// CPython peer in bench/python/bench_net.py. The other end (an echo, a
// listener, a reader) is a conclab::Thread of this process; both run on one
// CPU (OneCpu in bench.hpp says why).
//
//   net/tcp-rtt      one byte there and back on an open TCP connection (TCP_NODELAY)
//   net/tcp-connect  connect, a 4-byte request, a 4-byte response, close
//   net/udp-rtt      one 1-byte datagram each way (the client with a timeout, as a UDP client needs)
//   net/tcp-stream   send_all of 64 MiB, the peer reading it into a 64 MiB buffer
//   net/memcpy       memcpy of the same 64 MiB between two buffers: the ceiling
//
// CONCLAB_BENCH_NET_BYTES=N sets the 64 MiB (the smoke test makes it small).
// These rows register themselves (they need nothing from main) and run first.
#include <fmt/core.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <array>
#include <charconv>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <functional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "bench.hpp"
#include "conclab/socket.hpp"
#include "conclab/threading.hpp"

namespace conclab::bench {
namespace {

constexpr std::size_t kDefaultStreamBytes = std::size_t{64} << 20;
constexpr std::size_t kMaxStreamBytes = std::size_t{1} << 30;
constexpr std::string_view kRequest = "ping";
constexpr std::string_view kResponse = "pong";
constexpr std::chrono::seconds kDatagramTimeout{10};

// The bytes of net/tcp-stream and net/memcpy: CONCLAB_BENCH_NET_BYTES, else 64 MiB.
std::size_t stream_bytes() {
  const char* text = std::getenv("CONCLAB_BENCH_NET_BYTES");
  if (text == nullptr || *text == '\0') return kDefaultStreamBytes;
  std::size_t n = 0;
  const char* end = text + std::strlen(text);
  auto [p, err] = std::from_chars(text, end, n);
  if (err != std::errc() || p != end || n < 1 || n > kMaxStreamBytes)
    throw std::invalid_argument(
        fmt::format("CONCLAB_BENCH_NET_BYTES='{}' is not a number of bytes from 1 to {}", text, kMaxStreamBytes));
  return n;
}

// A buffer of `n` bytes, every page written (no page fault inside the timing);
// with `pattern`, bytes that depend on their offset, so that comparing a copy means something.
std::vector<std::byte> buffer(std::size_t n, bool pattern) {
  std::vector<std::byte> b(n);
  if (pattern)
    for (std::size_t i = 0; i < n; ++i) b[i] = static_cast<std::byte>(((i ^ (i >> 8) ^ (i >> 16)) * 131) & 0xff);
  return b;
}

// The thread at the other end, started at once. run(loop) runs the timing
// loop, then wakes the peer (closes or sends what it waits on) and joins it.
// The peer's exception is the row's error even when the loop failed too (the
// loop only saw the connection reset: the peer's error is the cause); else
// the loop's, else the wake-up's.
class Peer {
 public:
  Peer(Thread thread, std::function<void()> wake) : thread_(std::move(thread)), wake_(std::move(wake)) {
    thread_.start();
  }

  template <class Loop>
  void run(Loop loop) {
    std::exception_ptr error;
    try {
      loop();
    } catch (...) {
      error = std::current_exception();
    }
    try {
      wake_();
    } catch (...) {
      if (!error) error = std::current_exception();
    }
    thread_.join();
    if (auto peer_error = thread_.exception()) error = peer_error;
    if (error) std::rethrow_exception(error);
  }

 private:
  Thread thread_;
  std::function<void()> wake_;
};

// A TCP connection over loopback: both ends, TCP_NODELAY on each.
struct Connection {
  Socket client, server;
};

Connection connect_loopback() {
  Socket listener = create_server("127.0.0.1", 0);
  Socket client = create_connection("127.0.0.1", listener.address().port());
  Connection c{std::move(client), listener.accept().conn};
  c.client.setsockopt(IPPROTO_TCP, TCP_NODELAY, 1);
  c.server.setsockopt(IPPROTO_TCP, TCP_NODELAY, 1);
  return c;
}

// The echo of net/tcp-rtt: sends back what arrives until the client shuts down.
void echo_stream(Socket conn) {
  std::array<std::byte, 64> data{};
  while (std::size_t n = conn.recv_into(data)) conn.send_all(std::span(data.data(), n));
}

void tcp_rtt(benchmark::State& state) {
  auto [client, server] = connect_loopback();
  Peer peer(Thread(echo_stream, std::move(server)), [&client] { client.shutdown(SHUT_WR); });
  std::array<std::byte, 1> ping{std::byte{'x'}}, pong{};
  peer.run([&] {
    for (auto _ : state) {
      client.send_all(ping);
      if (client.recv_into(pong) != 1) throw std::runtime_error("tcp-rtt: the echo closed the connection");
    }
  });
}

// The listener of net/tcp-connect: answers each connection's request and
// closes it; a connection closed without a request ends the loop.
void serve_requests(Socket listener) {
  for (;;) {
    Socket conn = listener.accept().conn;
    std::string request = conn.recv(kRequest.size());
    if (request.empty()) return;
    if (request.size() < kRequest.size()) request += conn.recv_exact(kRequest.size() - request.size());
    conn.send_all(kResponse);
  }
}

void tcp_connect(benchmark::State& state) {
  Socket listener = create_server("127.0.0.1", 0);
  listener.settimeout(std::chrono::seconds(30));  // should the wake-up connection fail: no hang
  const Address address = listener.address();
  auto connect = [&address] {
    Socket s(Family::ipv4, Type::stream);
    s.connect(address);
    return s;
  };
  Peer peer(Thread(serve_requests, std::move(listener)), [&connect] { connect(); });
  peer.run([&] {
    for (auto _ : state) {
      Socket s = connect();
      s.send_all(kRequest);
      if (s.recv_exact(kResponse.size()) != kResponse) throw std::runtime_error("tcp-connect: a wrong response");
    }
  });
}

// The echo of net/udp-rtt: sends each datagram back; an empty one ends the loop.
void echo_datagrams(Socket sock) {
  for (;;) {
    Datagram d = sock.recvfrom(64);
    if (d.data.empty()) return;
    sock.sendto(d.data, d.peer);
  }
}

void udp_rtt(benchmark::State& state) {
  Socket server = create_server("127.0.0.1", 0, Type::datagram);
  const Address address = server.address();
  Socket client(Family::ipv4, Type::datagram);
  client.settimeout(kDatagramTimeout);  // a datagram may be lost: a row that fails, not one that hangs
  Peer peer(Thread(echo_datagrams, std::move(server)), [&] { client.sendto("", address); });
  peer.run([&] {
    for (auto _ : state) {
      client.sendto("x", address);
      if (client.recvfrom(64).data.size() != 1) throw std::runtime_error("udp-rtt: a wrong reply");
    }
  });
}

// The reader of net/tcp-stream: fills `into` from the connection, answers one
// byte when it is full, and again, until the client shuts down.
void read_and_ack(Socket conn, std::span<std::byte> into) {
  for (;;) {
    for (std::size_t got = 0; got < into.size();) {
      const std::size_t n = conn.recv_into(into.subspan(got));
      if (n == 0) return;
      got += n;
    }
    conn.send_all("k");
  }
}

void report_bytes(benchmark::State& state, std::size_t bytes) {
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(bytes));
  state.counters["bytes"] = static_cast<double>(bytes);
}

// One iteration: send_all of the whole buffer, then the reader's one-byte
// acknowledgement (send_all returns when the kernel has the last bytes, not
// when the reader has them).
void tcp_stream(benchmark::State& state) {
  const std::size_t bytes = stream_bytes();
  const auto data = buffer(bytes, true);
  auto received = buffer(bytes, false);
  auto [client, server] = connect_loopback();
  Peer peer(Thread(read_and_ack, std::move(server), std::span(received)), [&client] { client.shutdown(SHUT_WR); });
  std::array<std::byte, 1> ack{};
  peer.run([&] {
    for (auto _ : state) {
      client.send_all(data);
      if (client.recv_into(ack) != 1) throw std::runtime_error("tcp-stream: the reader closed the connection");
    }
  });
  if (received != data) throw std::runtime_error("tcp-stream: the bytes received differ from those sent");
  report_bytes(state, bytes);
}

void copy_memory(benchmark::State& state) {
  const std::size_t bytes = stream_bytes();
  const auto data = buffer(bytes, true);
  auto copy = buffer(bytes, false);
  for (auto _ : state) {
    std::memcpy(copy.data(), data.data(), bytes);
    benchmark::DoNotOptimize(copy.data());
    benchmark::ClobberMemory();
  }
  if (copy != data) throw std::runtime_error("memcpy: the copy differs");
  report_bytes(state, bytes);
}

void add(const char* name, void (*fn)(benchmark::State&), benchmark::TimeUnit unit) {
  add_row(name, fn, unit)->UseRealTime();
}

[[maybe_unused]] const bool registered = [] {
  add("net/tcp-rtt", tcp_rtt, benchmark::kMicrosecond);
  add("net/tcp-connect", tcp_connect, benchmark::kMicrosecond);
  add("net/udp-rtt", udp_rtt, benchmark::kMicrosecond);
  add("net/tcp-stream", tcp_stream, benchmark::kMillisecond);
  add("net/memcpy", copy_memory, benchmark::kMillisecond);
  return true;
}();

}  // namespace
}  // namespace conclab::bench
