// menu_bot_client.cpp — the seed's client of the "10086" menu bot (lab 09).
//
// Prints each answer as `receive: <text>`, prompts `please input:`, sends the
// line typed (without its newline, as the seed does) and stops after `exit`.
// It reads exactly one answer per line it sends, which keeps it in step with
// the bot although the protocol has no framing. Observe it against the
// iterative bot while another caller is connected: no greeting, and after
// --timeout seconds (the seed's settimeout(5)) it gives up.
// See also: menu_bot_iterative.cpp, python/menu_bot_client.py (the seed's program).
#include <fmt/core.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <iostream>
#include <stdexcept>
#include <string>

#include "conclab/cli.hpp"
#include "conclab/socket.hpp"

int main(int argc, char** argv) {
  CLI::App app{"Lab 09: talk to the 10086 menu bot, one line of stdin at a time."};
  conclab::NetFlags net{"127.0.0.1", 8888};  // the seed's client says 8005: a bug, its server listens on 8888
  conclab::add_net_flags(app, net, "connect to");
  double timeout_s = 5;
  app.add_option("--timeout", timeout_s, "seconds to wait for the bot's answer")
      ->check(CLI::Range(0.001, 86400.0))
      ->capture_default_str();

  return conclab::run_main(app, argc, argv, [&] {
    const auto timeout = std::chrono::duration<double>(timeout_s);
    auto sk = conclab::create_connection(net.host, static_cast<std::uint16_t>(net.port), timeout);
    const bool echo = !::isatty(STDIN_FILENO);  // show what was read, as a terminal shows what is typed
    int sent = 0;
    int received = 0;
    for (;;) {
      const std::string data = sk.recv(1024);
      if (data.empty()) throw std::runtime_error("the bot hung up");
      ++received;
      fmt::print("receive: {}\n", data);
      std::string inp;
      while (inp.empty()) {  // an empty line would send nothing and wait for an answer that never comes
        fmt::print("please input:");
        std::fflush(stdout);
        if (!std::getline(std::cin, inp)) {  // end of input: hang up
          fmt::print("\nmodel=client sent={} received={}\n", sent, received);
          return;
        }
        if (echo) fmt::print("{}\n", inp);
      }
      sk.send_all(inp);
      ++sent;
      if (inp == "exit") break;
    }
    fmt::print("model=client sent={} received={}\n", sent, received);
  });
}
