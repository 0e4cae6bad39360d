// ss_client.cpp — the seed 004 client of the socketserver servers (lab 12).
//
// Each line of stdin (stripped; empty lines skipped) is one request: connect,
// send it, print what comes back with one recv() of up to 1024 bytes, close.
// TCP by default (ss-tcp, ss-threading-tcp, ss-forking-tcp), --udp for
// ss-udp (one datagram out, one back, within --timeout), --unix PATH for
// ss-unix. The seed connects one socket again and again (an error from the
// second line on); this one makes a connection per line.
// See also: my_tcp_handler.hpp (what the servers answer), python/ss_client.py.
#include <fmt/core.h>

#include <chrono>
#include <iostream>
#include <optional>
#include <string>

#include "conclab/cli.hpp"
#include "conclab/socket.hpp"
#include "my_tcp_handler.hpp"

int main(int argc, char** argv) {
  CLI::App app{"Lab 12: sends each line of stdin as a request to a socketserver server, prints the answers."};
  conclab::NetFlags net{.host = "127.0.0.1", .port = 9999};
  conclab::add_net_flags(app, net, "connect to");
  bool udp = false;
  std::optional<std::string> unix_path;
  double timeout_s = 5;
  app.add_flag("--udp", udp, "send datagrams (ss-udp) instead of connecting over TCP");
  app.add_option("--unix", unix_path, "connect to this Unix socket file (ss-unix) instead")
      ->check(lab12::unix_path_check)
      ->excludes("--udp");
  app.add_option("--timeout", timeout_s, "seconds to wait for a connection or an answer")
      ->check(CLI::Range(0.001, 3600.0))
      ->capture_default_str();

  return conclab::run_main(app, argc, argv, [&] {
    const auto timeout = std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::duration<double>(timeout_s));
    const auto port = static_cast<std::uint16_t>(net.port);
    int sent = 0;
    int received = 0;
    std::string line;
    while (std::getline(std::cin, line)) {
      const std::string data = lab12::strip(line);
      if (data.empty()) continue;  // nothing to send: a TCP server would wait for it forever
      std::string answer;
      if (udp) {
        const auto to = conclab::resolve(net.host, port, conclab::Type::datagram).front();
        conclab::Socket sock(to.family, conclab::Type::datagram);
        sock.settimeout(timeout);
        sock.sendto(data, to.address);
        ++sent;
        answer = sock.recvfrom(1024).data;
      } else {
        conclab::Socket sock = unix_path ? conclab::create_unix_connection(*unix_path, timeout)
                                         : conclab::create_connection(net.host, port, timeout);
        sock.send_all(data);
        ++sent;
        answer = sock.recv(1024);
      }
      ++received;
      fmt::print("Received: {}\n", answer);
    }
    fmt::print("model=client sent={} received={}\n", sent, received);
  });
}
