// ss_forking_tcp.cpp — the seed's MyTCPHandler on ForkingTCPServer (lab 12).
//
// A child process per request: each request's lines start with the pid of
// the child serving it, a new one each time. The parent counts the requests
// (the children's counters die with them) and reaps every child as it ends:
// observe with `ps --ppid <server pid>` that no zombie (<defunct>) is left.
// See also: ss_tcp.cpp, ss_threading_tcp.cpp, python/ss_forking_tcp.py.
#include <fmt/core.h>
#include <unistd.h>

#include <atomic>

#include "conclab/cli.hpp"
#include "my_tcp_handler.hpp"

// MyTCPHandler, saying first which process serves the request.
struct ForkedHandler : lab12::MyTCPHandler {
  using MyTCPHandler::MyTCPHandler;
  void setup() override { fmt::print("child {} serves {}\n", ::getpid(), client_address.host()); }
};

// A ForkingTCPServer that counts the requests it hands to children.
using ForkingTCPServer = conclab::ForkingTCPServer<ForkedHandler>;
struct CountingServer : ForkingTCPServer {
  using ForkingTCPServer::ForkingTCPServer;
  std::atomic<int> served{0};

 protected:
  void process_request(conclab::HandlerContext& request) override {
    ++served;
    ForkingTCPServer::process_request(request);  // fork; the child runs the handler
  }
};

int main(int argc, char** argv) {
  CLI::App app{"Lab 12: the seed's MyTCPHandler on ForkingTCPServer (a process per request)."};
  conclab::NetFlags net{.host = "127.0.0.1", .port = 9999};
  conclab::add_net_flags(app, net, "listen on");

  return conclab::run_main(app, argc, argv, [&] {
    conclab::stop_on_signals();
    CountingServer server(net.host, static_cast<std::uint16_t>(net.port));
    lab12::serve_until_stopped(server);
    fmt::print("model=forking-tcp served={}\n", server.served.load());
  });
}
