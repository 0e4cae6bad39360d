// ss_udp.cpp — the seed's handler on socketserver's UDPServer (lab 12).
//
// Each datagram is a request: a DatagramRequestHandler reads it from
// `packet`, and what it leaves in `wfile` goes back to the sender as one
// datagram. No connection, so nothing to accept and nothing to close.
// Try it with `ss-client --udp`.
// See also: ss_tcp.cpp, ../07-udp (the seed's plain UDP pair), python/ss_udp.py.
#include <fmt/core.h>

#include "conclab/cli.hpp"
#include "my_tcp_handler.hpp"

struct MyUDPHandler : conclab::DatagramRequestHandler {
  using DatagramRequestHandler::DatagramRequestHandler;
  void handle() override {
    ++lab12::served;
    const std::string data = lab12::strip(packet);
    lab12::print_request(client_address, data);
    wfile = lab12::upper(data);  // finish() sends it back
  }
};

int main(int argc, char** argv) {
  CLI::App app{"Lab 12: the seed's handler on UDPServer (a datagram is a request)."};
  conclab::NetFlags net{.host = "127.0.0.1", .port = 9999};
  conclab::add_net_flags(app, net, "listen on");

  return conclab::run_main(app, argc, argv, [&] {
    conclab::stop_on_signals();
    conclab::UDPServer<MyUDPHandler> server(net.host, static_cast<std::uint16_t>(net.port));
    lab12::serve_until_stopped(server);
    fmt::print("model=udp served={}\n", lab12::served.load());
  });
}
