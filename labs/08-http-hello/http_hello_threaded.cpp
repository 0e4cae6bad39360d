// http_hello_threaded.cpp — the seed's web server, correct HTTP/1.1, a thread per connection (lab 08).
//
// The same server as http_hello_iterative.cpp (http_hello.hpp does the HTTP),
// but each connection gets a conclab::Thread, so a keep-alive client no
// longer holds the others up. Threads that have finished are joined at each
// accept, so their number stays that of the open connections.
// See also: http_hello_iterative.cpp, python/http_hello.py.
#include <fmt/core.h>

#include <atomic>
#include <list>

#include "conclab/cli.hpp"
#include "conclab/signals.hpp"
#include "conclab/socket.hpp"
#include "conclab/threading.hpp"
#include "http_hello.hpp"

int main(int argc, char** argv) {
  CLI::App app{"Lab 08: HTTP/1.1 Hello, World, a thread per connection."};
  conclab::NetFlags net{"localhost", 8080};
  conclab::add_net_flags(app, net, "listen on");
  http_hello::Options options;
  http_hello::add_flags(app, options);

  return conclab::run_main(app, argc, argv, [&] {
    conclab::stop_on_signals();
    auto server = conclab::create_server(net.host, static_cast<std::uint16_t>(net.port));
    fmt::print("listening on {}\n", server.address());
    int served = 0;
    std::atomic<int> requests = 0;
    std::list<conclab::Thread> threads;
    try {
      for (;;) {
        auto [conn, peer] = server.accept();
        ++served;
        std::erase_if(threads, [](conclab::Thread& t) { return !t.is_alive() && (t.join(), true); });
        threads.emplace_back(
            [&](conclab::Socket connection) {
              try {
                http_hello::serve_connection(connection, options, requests);
              } catch (const conclab::Interrupted&) {  // stopping: the main thread joins us
              }
            },
            std::move(conn));
        try {
          threads.back().start();
        } catch (const conclab::ThreadStartError& e) {  // no thread for it: drop this connection only
          fmt::print(stderr, "{}: {}\n", peer, e.what());
          threads.pop_back();
        }
      }
    } catch (const conclab::Interrupted&) {
    }
    for (auto& t : threads) t.join();
    fmt::print("model=threaded served={} requests={}\n", served, requests.load());
  });
}
