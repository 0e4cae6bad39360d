// echo_server.cpp — the seed 001 echo server (lab 06): bind, listen, accept, echo.
//
// conclab::create_server is the seed's getaddrinfo loop (each address of
// --host in turn, the first that binds wins), so --host ::1 and --host
// localhost work as 127.0.0.1 does. Every chunk a client sends comes back
// until the client closes; unlike the seed, the server then accepts the next
// client, and closes one that stays silent for --idle-timeout seconds.
// See also: echo_client.cpp, python/echo_server.py (the seed's program).
#include <fmt/core.h>

#include <chrono>
#include <string>

#include "conclab/cli.hpp"
#include "conclab/socket.hpp"

int main(int argc, char** argv) {
  CLI::App app{"Lab 06: the seed 001 echo server: sends every chunk back until the client closes."};
  conclab::NetFlags net{.host = "127.0.0.1", .port = 10000};
  conclab::add_net_flags(app, net, "listen on");
  double idle_s = 30;
  app.add_option("--idle-timeout", idle_s, "seconds a client may stay silent before it is closed")
      ->check(CLI::Range(0.001, 86400.0))
      ->capture_default_str();

  return conclab::run_main(app, argc, argv, [&] {
    conclab::stop_on_signals();
    auto s = conclab::create_server(net.host, static_cast<std::uint16_t>(net.port));
    fmt::print("listening on {}\n", s.address());
    int served = 0;
    std::size_t echoed = 0;
    try {
      for (;;) {
        auto [conn, addr] = s.accept();
        fmt::print("Connected by {}\n", addr);
        ++served;
        conn.settimeout(std::chrono::duration<double>(idle_s));
        try {
          for (;;) {
            std::string data = conn.recv(1024);
            if (data.empty()) break;  // the client closed
            echoed += data.size();
            conn.send_all(data);  // the seed's conn.send(data) may send less: see send_vs_sendall.cpp
          }
        } catch (const conclab::TimeoutError&) {
          fmt::print(stderr, "connection from {} closed: idle for {:g} s\n", addr, idle_s);
        } catch (const conclab::SocketError& e) {
          fmt::print(stderr, "connection from {} ended: {}\n", addr, e.code().message());
        }
      }  // conn is closed here, whatever happened
    } catch (const conclab::Interrupted&) {
      // SIGINT or SIGTERM: stop serving, say what was done.
    }
    fmt::print("model=iterative served={} bytes={}\n", served, echoed);
  });
}
