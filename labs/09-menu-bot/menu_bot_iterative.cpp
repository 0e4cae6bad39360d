// menu_bot_iterative.cpp — the seed's "10086" menu bot, one caller at a time (lab 09).
//
// The seed's first server: accept a caller, talk until it says "exit", then
// accept the next. Observe that a second caller gets no greeting at all
// until the first one has left: it is connected (the kernel accepted it into
// the listen backlog) but nobody talks to it.
// See also: menu_bot_threaded.cpp, menu_bot.hpp (the conversation), menu_bot_client.cpp,
// python/menu_bot_server.py (the seed's program).
#include <fmt/core.h>

#include "conclab/cli.hpp"
#include "conclab/signals.hpp"
#include "conclab/socket.hpp"
#include "menu_bot.hpp"

int main(int argc, char** argv) {
  CLI::App app{"Lab 09: the 10086 menu bot, one caller at a time."};
  conclab::NetFlags net{"127.0.0.1", 8888};
  conclab::add_net_flags(app, net, "listen on");
  double idle_timeout_s = 60;
  menu_bot::add_idle_flag(app, idle_timeout_s);

  return conclab::run_main(app, argc, argv, [&] {
    conclab::stop_on_signals();
    auto server = conclab::create_server(net.host, static_cast<std::uint16_t>(net.port));
    fmt::print("listening on {}\n", server.address());
    int served = 0;
    try {
      for (;;) {
        auto [conn, peer] = server.accept();
        ++served;
        fmt::print("connection from {}\n", peer);
        menu_bot::process(conn, peer, idle_timeout_s);
      }
    } catch (const conclab::Interrupted&) {
    }
    fmt::print("model=iterative served={}\n", served);
  });
}
