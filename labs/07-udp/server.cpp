// server.cpp — the seed 003 UDP server on port 9999 (lab 07).
//
// No listen, no accept, no connection: recvfrom() returns one datagram and
// who sent it, whoever that is. Observe each line the client sends arrive as
// one datagram, an empty line as an empty datagram, and a datagram larger
// than --bufsize reported as truncated: the kernel keeps what fits and drops
// the rest (Python's recvfrom drops it without a word).
// See also: client.cpp, python/server.py (the seed's program), lab 06's TCP pair.
#include <fmt/core.h>

#include "conclab/cli.hpp"
#include "conclab/socket.hpp"

int main(int argc, char** argv) {
  CLI::App app{"Lab 07: the seed 003 UDP server: prints each datagram and who sent it."};
  conclab::NetFlags net{.host = "127.0.0.1", .port = 9999};
  conclab::add_net_flags(app, net, "listen on");
  int bufsize = 1024;
  app.add_option("--bufsize", bufsize, "bytes of a datagram kept; the rest is reported as truncated")
      ->check(conclab::int_in_range(1, 65536))
      ->capture_default_str();

  return conclab::run_main(app, argc, argv, [&] {
    conclab::stop_on_signals();
    auto sk = conclab::create_server(net.host, static_cast<std::uint16_t>(net.port), conclab::Type::datagram);
    fmt::print("listening on {}\n", sk.address());
    int received = 0;
    int truncated = 0;
    try {
      for (;;) {
        auto data = sk.recvfrom(static_cast<std::size_t>(bufsize));
        ++received;
        fmt::print("from {}: {}\n", data.peer, data.data.empty() ? "(empty datagram)" : data.data);
        if (data.truncated) {
          ++truncated;
          fmt::print("truncated: {} bytes, kept {}\n", data.full_size, data.data.size());
        }
      }
    } catch (const conclab::Interrupted&) {
      // SIGINT or SIGTERM: stop, say what was done.
    }
    fmt::print("model=udp received={} truncated={}\n", received, truncated);
  });
}
