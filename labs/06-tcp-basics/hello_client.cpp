// hello_client.cpp — the seed 003 TCP client (lab 06): one request, one reply.
//
// Sends 请求占领地球 (UTF-8 on the wire, as the seed's source file) and prints
// the reply it gets with one recv of up to 1024 bytes.
// See also: hello_server.cpp, echo_client.cpp, python/hello_client.py (the seed's program).
#include <fmt/core.h>

#include <string>

#include "conclab/cli.hpp"
#include "conclab/socket.hpp"

int main(int argc, char** argv) {
  CLI::App app{"Lab 06: the seed 003 TCP client: sends one request and prints the reply."};
  conclab::NetFlags net{.host = "127.0.0.1", .port = 9999};
  conclab::add_net_flags(app, net, "connect to");

  return conclab::run_main(app, argc, argv, [&] {
    auto sk = conclab::create_connection(net.host, static_cast<std::uint16_t>(net.port));
    sk.send_all("请求占领地球");
    std::string server_reply = sk.recv(1024);
    fmt::print("{}\n", server_reply);
    sk.close();
  });
}
