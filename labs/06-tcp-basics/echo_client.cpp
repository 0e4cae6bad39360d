// echo_client.cpp — the seed 001 echo client (lab 06): connect, send, receive once.
//
// conclab::create_connection is the seed's getaddrinfo loop: each address of
// --host is tried in turn and the first that connects wins. The client sends
// `Hello, world`, reads one reply of up to 1024 bytes and prints it as the
// seed's Python 2 `print "Received", repr(data)` does: Received 'Hello, world'.
// See also: echo_server.cpp, python/echo_client.py (the seed's program).
#include <fmt/core.h>

#include <string>
#include <string_view>

#include "conclab/cli.hpp"
#include "conclab/socket.hpp"

// Python's repr() of a byte string, without Python 3's b prefix: quotes
// around it, \t \n \r \\ and the quote escaped, other bytes outside
// printable ASCII as \xNN.
std::string py_repr(std::string_view data) {
  const char quote = (data.find('\'') != std::string_view::npos && data.find('"') == std::string_view::npos) ? '"' : '\'';
  std::string out(1, quote);
  for (const unsigned char c : data) {
    if (c == quote || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c == '\t') {
      out += "\\t";
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c < 0x20 || c >= 0x7f) {
      out += fmt::format("\\x{:02x}", c);
    } else {
      out += static_cast<char>(c);
    }
  }
  return out + quote;
}

int main(int argc, char** argv) {
  CLI::App app{"Lab 06: the seed 001 echo client: sends 'Hello, world' and prints what comes back."};
  conclab::NetFlags net{.host = "127.0.0.1", .port = 10000};
  conclab::add_net_flags(app, net, "connect to");

  return conclab::run_main(app, argc, argv, [&] {
    auto s = conclab::create_connection(net.host, static_cast<std::uint16_t>(net.port));
    s.send_all("Hello, world");
    std::string data = s.recv(1024);  // one recv, as the seed: enough on loopback, see README
    s.close();
    fmt::print("Received {}\n", py_repr(data));
  });
}
