// hello_server.cpp — the seed 003 TCP server on port 9999 (lab 06).
//
// One client after another: receive one request (one recv of up to 1024
// bytes), print it, answer 不要回答,不要回答,不要回答 and close. Observe that
// the server closes first: the client learns the answer is complete only from
// that close. A client that sends nothing for --idle-timeout seconds is
// closed and the server carries on.
// See also: hello_client.cpp, echo_server.cpp, python/hello_server.py (the seed's program).
#include <fmt/core.h>

#include <chrono>
#include <string>

#include "conclab/cli.hpp"
#include "conclab/socket.hpp"

int main(int argc, char** argv) {
  CLI::App app{"Lab 06: the seed 003 TCP server: prints each request, answers and closes."};
  conclab::NetFlags net{.host = "127.0.0.1", .port = 9999};
  conclab::add_net_flags(app, net, "listen on");
  double idle_s = 30;
  app.add_option("--idle-timeout", idle_s, "seconds a client may stay silent before it is closed")
      ->check(CLI::Range(0.001, 86400.0))
      ->capture_default_str();

  return conclab::run_main(app, argc, argv, [&] {
    conclab::stop_on_signals();
    auto sk = conclab::create_server(net.host, static_cast<std::uint16_t>(net.port));
    fmt::print("listening on {}\n", sk.address());
    int served = 0;
    try {
      for (;;) {
        fmt::print("server waiting...\n");
        auto [conn, addr] = sk.accept();
        ++served;
        conn.settimeout(std::chrono::duration<double>(idle_s));
        try {
          std::string client_data = conn.recv(1024);
          if (client_data.empty()) {  // the seed would print an empty line and answer a closed socket
            fmt::print(stderr, "connection from {} closed before a request\n", addr);
            continue;
          }
          fmt::print("{}\n", client_data);
          conn.send_all("不要回答,不要回答,不要回答");
        } catch (const conclab::TimeoutError&) {
          fmt::print(stderr, "connection from {} closed: idle for {:g} s\n", addr, idle_s);
        } catch (const conclab::SocketError& e) {
          fmt::print(stderr, "connection from {} ended: {}\n", addr, e.code().message());
        }
      }  // conn.close(), as the seed
    } catch (const conclab::Interrupted&) {
      // SIGINT or SIGTERM: stop serving, say what was done.
    }
    fmt::print("model=iterative served={}\n", served);
  });
}
