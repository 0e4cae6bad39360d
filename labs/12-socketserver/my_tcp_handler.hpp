// my_tcp_handler.hpp — the seed's MyTCPHandler (lab 12), shared by the
// servers of this lab so that ss_tcp.cpp and ss_threading_tcp.cpp differ in
// one line: the server class.
//
// One request per connection, as the seed 001 handler: one recv() of up to
// 1024 bytes, stripped of blanks, printed, sent back upper-cased (ASCII, as
// Python's bytes.upper()). serve_until_stopped() is the loop every server
// here runs: the listening line, serve_forever() until Ctrl-C or SIGTERM,
// server_close().
// See also: python/my_tcp_handler.py, ss_client.cpp.
#pragma once

#include <fmt/core.h>

#include <CLI/CLI.hpp>

#include <atomic>
#include <string>
#include <string_view>

#include "conclab/signals.hpp"
#include "conclab/socketserver.hpp"

namespace lab12 {

// Requests served, by any thread.
inline std::atomic<int> served{0};

// --path of a Unix socket: what fits in sockaddr_un (a bad flag: exit 2).
inline const CLI::Validator unix_path_check(
    [](const std::string& path) -> std::string {
      return path.empty() || path.size() > 107 ? "a Unix socket path is 1 to 107 bytes" : "";
    },
    "PATH");

// Python's bytes.strip(): the ASCII blanks at both ends go.
inline std::string strip(std::string_view s) {
  constexpr std::string_view blanks = " \t\n\r\f\v";
  const auto first = s.find_first_not_of(blanks);
  if (first == std::string_view::npos) return "";
  return std::string(s.substr(first, s.find_last_not_of(blanks) - first + 1));
}

// Python's bytes.upper(): ASCII letters only, every other byte as it is.
inline std::string upper(std::string s) {
  for (char& c : s)
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
  return s;
}

// The seed's "{} wrote:" line and the data; the client's host (for a Unix
// socket, its path: usually "(unnamed)").
inline void print_request(const conclab::Address& client, const std::string& data) {
  fmt::print("{} wrote:\n{}\n", client.host(), data);
}

struct MyTCPHandler : conclab::BaseRequestHandler {
  using BaseRequestHandler::BaseRequestHandler;
  void handle() override {
    ++served;
    const std::string data = strip(request.recv(1024));  // self.request is the TCP socket connected to the client
    print_request(client_address, data);
    request.send_all(upper(data));  // just send back the same data, but upper-cased
  }
};

// The listening line, then serve requests until Ctrl-C or SIGTERM; then
// server_close() waits for the threads or children still serving.
inline void serve_until_stopped(conclab::BaseServer& server) {
  fmt::print("listening on {}\n", server.server_address());
  try {
    server.serve_forever();
  } catch (const conclab::Interrupted&) {
  }
  server.server_close();
}

}  // namespace lab12
