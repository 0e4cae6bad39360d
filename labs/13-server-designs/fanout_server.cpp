// fanout_server.cpp — every server design of UNP chapter 30 (and the seeds'
// event loops and socketserver servers) behind one flag, serving the fan-out
// protocol: "4000\n" in, 4000 bytes out, the client closes first (lab 13).
//
// Run it with --model M, drive it with fanout-client, stop it with Ctrl-C:
// the summary line gives what the book measured, the server's CPU time
// (its own plus its reaped children's), and the connections each child or
// thread served (the prefork models show how evenly the kernel shares them).
// See also: python/fanout_server.py, shared/src/server_designs*.cpp.
#include <fmt/core.h>
#include <fmt/format.h>

#include <string>

#include "conclab/cli.hpp"
#include "conclab/fd.hpp"
#include "conclab/server_designs.hpp"
#include "conclab/socket.hpp"

namespace fanout = conclab::fanout;

// --help: each model's design, and which one stands for each model of the seeds.
std::string models_help() {
  std::string text = "\nModels:\n";
  for (auto model : fanout::server_models()) text += fmt::format("  {:<23} {}\n", model, fanout::model_design(model));
  text +=
      "\nThe seeds' models here: serial -> iterative; threaded -> thread-per-client; thread-locked -> "
      "prethread-mutex (an RLock around accept); forked -> fork-per-client; process-pool -> the prefork-* "
      "models; shared-memory -> prefork-mutex (lock and counters in a SharedArray).\n"
      "Summary: workers is the size of the fixed pool (0: none), per_worker its connections served each ('-': no "
      "fixed pool); a connection is refused when it is closed without its whole reply.\n";
  return text;
}

int main(int argc, char** argv) {
  CLI::App app{"Lab 13: the fan-out server, every design of UNP chapter 30 behind --model."};
  app.footer(models_help());
  conclab::NetFlags net{.host = "127.0.0.1", .port = 0};
  conclab::add_net_flags(app, net, "listen on");
  std::string model;
  const std::string names = fmt::format("{}", fmt::join(fanout::server_models(), ", "));
  app.add_option("--model", model, "the server design (see Models below)")
      ->required()
      ->check(CLI::Validator(
          [&names](const std::string& m) {
            return fanout::is_server_model(m) ? "" : fmt::format("no model '{}'; models: {}", m, names);
          },
          "MODEL"));
  fanout::ServerOptions options;
  int sleep_ms = 0, idle_ms = 10'000;
  app.add_option("--sleep-ms", sleep_ms, "service time: wait this long before each reply (default 0)")
      ->check(conclab::int_in_range(0, conclab::kMaxSleepMs));
  app.add_flag("--blocking-sleep", options.blocking_sleep,
               "event loops: sleep in the loop instead of a timer (every other client waits)");
  app.add_option("--workers", options.workers, "children or threads of the pool models (default 15, the book's)")
      ->check(conclab::int_in_range(1, conclab::kMaxThreads));
  app.add_option("--loops", options.loops, "epoll-threads: how many loops (default: one per core it may run on)")
      ->check(conclab::int_in_range(1, conclab::kMaxThreads));
  app.add_option("--max-bytes", options.max_bytes, "largest count answered; larger ones are refused (default 16384)")
      ->check(conclab::int_in_range(1, fanout::kLargestMaxBytes));
  app.add_option("--idle-ms", idle_ms, "close a connection silent for this long (default 10000)")
      ->check(conclab::int_in_range(1, conclab::kMaxSleepMs));

  return conclab::run_main(app, argc, argv, [&] {
    options.sleep = std::chrono::milliseconds(sleep_ms);
    options.idle = std::chrono::milliseconds(idle_ms);
    // 10,000 clients need more than the usual soft limit of 1,024, and a
    // descriptor table grown before the threads start (fd.hpp says why).
    conclab::raise_fd_limit();
    conclab::reserve_fd_table();
    conclab::stop_on_signals();
    auto listener = conclab::create_server(net.host, static_cast<std::uint16_t>(net.port));
    fmt::print("listening on {}\n", listener.address());
    const auto report = fanout::serve(model, listener, options);  // until Ctrl-C or SIGTERM
    fmt::print("{}\n", fanout::summary_line(report));
  });
}
