// ss_unix.cpp — the seed's MyTCPHandler on socketserver's UnixStreamServer (lab 12).
//
// The same stream handler on a Unix-domain socket: an address that is a file
// (--path) instead of host:port, for clients on the same machine. Observe
// that the socket file exists while the server runs and is gone after
// Ctrl-C: conclab's server_close() removes it (CPython's leaves it behind,
// and the next bind() fails with "Address already in use").
// See also: ss_tcp.cpp, ss_client.cpp (--unix PATH), python/ss_unix.py.
#include <fmt/core.h>

#include <string>

#include "conclab/cli.hpp"
#include "my_tcp_handler.hpp"

int main(int argc, char** argv) {
  CLI::App app{"Lab 12: the seed's MyTCPHandler on UnixStreamServer (a socket file)."};
  std::string path = "/tmp/ss-unix.sock";
  app.add_option("--path", path, "the socket file to listen on")
      ->check(lab12::unix_path_check)
      ->capture_default_str();

  return conclab::run_main(app, argc, argv, [&] {
    conclab::stop_on_signals();
    conclab::UnixStreamServer<lab12::MyTCPHandler> server(path);
    lab12::serve_until_stopped(server);
    fmt::print("model=unix served={}\n", lab12::served.load());
  });
}
