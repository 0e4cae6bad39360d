// ss_threading_tcp.cpp — the seed's MyTCPHandler on socketserver's ThreadingTCPServer (lab 12).
//
// A thread per request: ss_tcp.cpp with one line changed (the seed's
// "change TCPServer to ThreadingTCPServer"). Observe that a client that
// connects and says nothing no longer holds up the others.
// conclab joins each thread as it ends (CPython kept them: gh-81374).
// See also: my_tcp_handler.hpp (the handler), ss_client.cpp, python/ss_threading_tcp.py.
#include <fmt/core.h>

#include "conclab/cli.hpp"
#include "my_tcp_handler.hpp"

int main(int argc, char** argv) {
  CLI::App app{"Lab 12: the seed's MyTCPHandler on ThreadingTCPServer (a thread per request)."};
  conclab::NetFlags net{.host = "127.0.0.1", .port = 9999};
  conclab::add_net_flags(app, net, "listen on");

  return conclab::run_main(app, argc, argv, [&] {
    conclab::stop_on_signals();
    conclab::ThreadingTCPServer<lab12::MyTCPHandler> server(net.host, static_cast<std::uint16_t>(net.port));
    lab12::serve_until_stopped(server);
    fmt::print("model=threading-tcp served={}\n", lab12::served.load());
  });
}
