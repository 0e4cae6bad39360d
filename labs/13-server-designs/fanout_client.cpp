// fanout_client.cpp — the client of the fan-out benchmark (lab 13): C clients
// at once, each doing R requests of B bytes (a connection per request, the
// client closing first), driven by one epoll loop; or, with --children K
// --loops L, the book's forking client (UNP 30.2). One summary line: requests
// per second, latency percentiles, every error by kind, what the cap left
// unfinished. Observe: against `fanout-server --model iterative` the p99
// grows with C; errors and unfinished requests make exit 1, never a clean
// number. See also: conclab/fanout_client.hpp (the driver), fanout_server.cpp.
#include <fmt/core.h>
#include <fmt/os.h>

#include <chrono>
#include <cstdio>
#include <stdexcept>
#include <string>

#include "conclab/cli.hpp"
#include "conclab/fanout_client.hpp"

namespace fanout = conclab::fanout;

int main(int argc, char** argv) {
  CLI::App app{"Lab 13: C clients at once against a fan-out server; prints throughput, latency and errors."};
  conclab::NetFlags net{.host = "127.0.0.1", .port = 9877};
  conclab::add_net_flags(app, net, "connect to");
  fanout::ClientOptions options;
  int timeout_ms = 5000;
  double cap_s = 60;
  std::string json_file;
  app.add_option("--clients", options.clients, "connections at once (C)")
      ->check(conclab::int_in_range(1, 100'000))->capture_default_str();
  app.add_option("--requests", options.requests, "requests per client, one after the other, a connection each (R)")
      ->check(conclab::int_in_range(1, 10'000'000))->capture_default_str();
  app.add_option("--bytes", options.bytes, "bytes asked for per request (B)")
      ->check(conclab::int_in_range(1, fanout::kLargestMaxBytes))->capture_default_str();
  app.add_option("--timeout-ms", timeout_ms, "a request without progress for this long is timed out")
      ->check(conclab::int_in_range(1, 3'600'000))->capture_default_str();
  app.add_option("--cap-s", cap_s, "the whole run stops after this long; what is left is unfinished")
      ->check(CLI::Range(0.001, 86'400.0))->capture_default_str();
  app.add_option("--sources", options.sources,
                 "spread connections over 127.0.0.1 .. 127.0.0.N (default 64: fanout_client.hpp says why)")
      ->check(conclab::int_in_range(1, fanout::kMaxSources));
  auto* children = app.add_option("--children", options.children, "the forking client: K children instead of epoll")
                       ->check(conclab::int_in_range(1, 1000))->excludes("--clients", "--requests");
  app.add_option("--loops", options.loops, "requests per child, one after the other (L)")
      ->check(conclab::int_in_range(1, 1'000'000))->needs(children)->capture_default_str();
  app.add_option("--json", json_file, "also write the summary as a JSON object to FILE");

  return conclab::run_main(app, argc, argv, [&] {
    const long long total = options.children > 0 ? 1LL * options.children * options.loops
                                                 : 1LL * options.clients * options.requests;
    if (total > (options.children > 0 ? 1'000'000 : 10'000'000)) {
      fmt::print(stderr, "fanout-client: {}: too many requests in one run ({}); at most {}\n",
                 options.children > 0 ? "--children * --loops" : "--clients * --requests", total,
                 options.children > 0 ? "1,000,000" : "10,000,000");
      return conclab::kExitUsage;
    }
    options.host = net.host;
    options.port = net.port;
    options.timeout = std::chrono::milliseconds(timeout_ms);
    options.cap = std::chrono::milliseconds(static_cast<long long>(cap_s * 1000 + 0.5));

    fanout::ClientReport report;
    try {
      report = fanout::run_clients(options);
    } catch (const std::invalid_argument& bad) {  // --sources toward an IPv6 server
      fmt::print(stderr, "fanout-client: {}\n", bad.what());
      return conclab::kExitUsage;
    }
    for (const auto& note : report.notes) fmt::print(stderr, "fanout-client: {}\n", note);
    for (int k = 0; k < fanout::kErrorKinds; ++k)
      if (report.errors[k] > 0)
        fmt::print(stderr, "fanout-client: {} {}, the first: {}\n", report.errors[k],
                   fanout::error_key(static_cast<fanout::ErrorKind>(k)), report.first_error[k]);
    if (report.unfinished > 0)
      fmt::print(stderr, "fanout-client: {} requests unfinished when the cap of {} s was reached\n",
                 report.unfinished, cap_s);
    fmt::print("{}\n", report.summary_line());
    if (!json_file.empty()) {
      auto out = fmt::output_file(json_file);
      out.print("{}\n", report.json());
    }
    return report.all_ok() ? conclab::kExitOk : conclab::kExitFailure;
  });
}
