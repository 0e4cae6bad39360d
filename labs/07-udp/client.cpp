// client.cpp — the seed 003 UDP client (lab 07): each line typed becomes a datagram.
//
// sendto() each line read from stdin (stripped of blanks at both ends, as
// the seed's .strip()) to --host:--port until a line `exit` or the end of
// stdin. No connection: sendto() succeeds whether or not a server listens.
// The prompt 数据: appears only when stdin is a terminal.
// See also: server.cpp, python/client.py (the seed's program).
#include <fmt/core.h>
#include <unistd.h>

#include <cstdio>
#include <iostream>
#include <string>

#include "conclab/cli.hpp"
#include "conclab/socket.hpp"

// Python 2's str.strip(): the ASCII blanks at both ends go.
std::string strip(const std::string& line) {
  const char* blanks = " \t\n\r\f\v";
  const auto first = line.find_first_not_of(blanks);
  if (first == std::string::npos) return "";
  return line.substr(first, line.find_last_not_of(blanks) - first + 1);
}

int main(int argc, char** argv) {
  CLI::App app{"Lab 07: the seed 003 UDP client: sends each line of stdin as a datagram until 'exit'."};
  conclab::NetFlags net{.host = "127.0.0.1", .port = 9999};
  conclab::add_net_flags(app, net, "send to");

  return conclab::run_main(app, argc, argv, [&] {
    const auto ip_port = conclab::resolve(net.host, static_cast<std::uint16_t>(net.port), conclab::Type::datagram).front();
    conclab::Socket sk(ip_port.family, conclab::Type::datagram);
    const bool prompt = ::isatty(STDIN_FILENO);
    int sent = 0;
    std::size_t bytes = 0;
    std::string line;
    for (;;) {
      if (prompt) {
        fmt::print("数据:");
        std::fflush(stdout);  // no newline after a prompt: flush it by hand
      }
      if (!std::getline(std::cin, line)) break;  // end of stdin
      const std::string inp = strip(line);
      if (inp == "exit") break;
      sk.sendto(inp, ip_port.address);
      ++sent;
      bytes += inp.size();
    }
    fmt::print("model=udp-client sent={} bytes={}\n", sent, bytes);
  });
}
