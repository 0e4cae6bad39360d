// ss_tcp.cpp — the seed's MyTCPHandler on socketserver's TCPServer (lab 12).
//
// One request at a time: the server calls the handler for a connection and
// accepts the next only when it returns. Observe that a client that connects
// and says nothing holds up every other client. ss_threading_tcp.cpp is this
// file with one line changed.
// See also: my_tcp_handler.hpp (the handler), ss_client.cpp, python/ss_tcp.py.
#include <fmt/core.h>

#include "conclab/cli.hpp"
#include "my_tcp_handler.hpp"

int main(int argc, char** argv) {
  CLI::App app{"Lab 12: the seed's MyTCPHandler on TCPServer (one request at a time)."};
  conclab::NetFlags net{.host = "127.0.0.1", .port = 9999};
  conclab::add_net_flags(app, net, "listen on");

  return conclab::run_main(app, argc, argv, [&] {
    conclab::stop_on_signals();
    conclab::TCPServer<lab12::MyTCPHandler> server(net.host, static_cast<std::uint16_t>(net.port));
    lab12::serve_until_stopped(server);
    fmt::print("model=tcp served={}\n", lab12::served.load());
  });
}
