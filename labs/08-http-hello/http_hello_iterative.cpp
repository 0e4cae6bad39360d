// http_hello_iterative.cpp — the seed's web server, correct HTTP/1.1, one connection at a time (lab 08).
//
// curl, a browser and wrk all work against it (http_hello.hpp does the HTTP).
// Observe that a keep-alive connection holds the whole server: the next
// client waits until it closes, goes idle for --idle-timeout, or reaches
// --max-requests. See also: http_hello_threaded.cpp (a thread per connection),
// python/http_hello.py (the same server in Python), python/seed_server.py (the seed's).
#include <fmt/core.h>

#include "conclab/cli.hpp"
#include "conclab/signals.hpp"
#include "conclab/socket.hpp"
#include "http_hello.hpp"

int main(int argc, char** argv) {
  CLI::App app{"Lab 08: HTTP/1.1 Hello, World, serving one connection at a time."};
  conclab::NetFlags net{"localhost", 8080};
  conclab::add_net_flags(app, net, "listen on");
  http_hello::Options options;
  http_hello::add_flags(app, options);

  return conclab::run_main(app, argc, argv, [&] {
    conclab::stop_on_signals();
    auto server = conclab::create_server(net.host, static_cast<std::uint16_t>(net.port));
    fmt::print("listening on {}\n", server.address());
    int served = 0;
    int requests = 0;
    try {
      for (;;) {
        auto [conn, peer] = server.accept();
        ++served;
        http_hello::serve_connection(conn, options, requests);
      }
    } catch (const conclab::Interrupted&) {
    }
    fmt::print("model=iterative served={} requests={}\n", served, requests);
  });
}
