// ss_shutdown_latency.cpp — how long socketserver's shutdown() takes (lab 12).
//
// Each round: a TCPServer on any free port, serve_forever() in a thread, one
// request served, then shutdown() from the main thread, timed. conclab's loop
// waits on a wake-up descriptor, so shutdown() returns in microseconds;
// CPython's serve_forever() looks at its flag every 0.5 s (gh-88932), and
// python/ss_shutdown_latency.py shows what that costs.
// See also: ss_thread_name.cpp, the benchmark row socketserver/shutdown.
#include <fmt/core.h>

#include <algorithm>
#include <chrono>
#include <numeric>
#include <vector>

#include "conclab/cli.hpp"
#include "conclab/clock.hpp"
#include "conclab/socketserver.hpp"
#include "conclab/threading.hpp"
#include "my_tcp_handler.hpp"

// The seed's handler without its prints.
struct QuietHandler : conclab::BaseRequestHandler {
  using BaseRequestHandler::BaseRequestHandler;
  void handle() override { request.send_all(lab12::upper(lab12::strip(request.recv(1024)))); }
};

int main(int argc, char** argv) {
  CLI::App app{"Lab 12: serve one request, then time shutdown() from another thread."};
  std::string host = "127.0.0.1";
  int rounds = 5;
  app.add_option("--host", host, "host name or address to listen on")->capture_default_str();
  app.add_option("--rounds", rounds, "how many servers to start, serve and shut down")
      ->check(CLI::Range(1, 10000))
      ->capture_default_str();

  return conclab::run_main(app, argc, argv, [&] {
    std::vector<double> took;
    for (int round = 1; round <= rounds; ++round) {
      conclab::TCPServer<QuietHandler> server(host, 0);
      conclab::Thread server_thread([&] { server.serve_forever(); });
      server_thread.start();
      {
        auto sock = conclab::create_connection(host, server.server_address().port(), std::chrono::seconds(10));
        sock.send_all("hello");
        sock.recv(1024);  // served: the loop is waiting for the next request
      }
      conclab::Stopwatch clock;
      server.shutdown();
      took.push_back(clock.seconds());
      server_thread.join();
      fmt::print("round {}: shutdown took {:.6f} s\n", round, took.back());
    }
    const double mean = std::accumulate(took.begin(), took.end(), 0.0) / static_cast<double>(took.size());
    std::sort(took.begin(), took.end());
    fmt::print("model=tcp rounds={} shutdown_s={:.6f} median_s={:.6f} max_s={:.6f}\n", rounds, mean,
               took[took.size() / 2], took.back());
  });
}
