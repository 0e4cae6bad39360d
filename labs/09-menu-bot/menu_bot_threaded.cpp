// menu_bot_threaded.cpp — the seed's "10086" menu bot, a thread per caller (lab 09).
//
// The seed's process() in a conclab::Thread for each caller, as its
// select+thread example (and socketserver's ThreadingTCPServer) does.
// Observe that two callers are served at once. Threads that have finished
// are joined at each accept, so their number stays that of the callers.
// See also: menu_bot_iterative.cpp, menu_bot.hpp (the conversation),
// python/menu_bot_threaded.py (the seed's program).
#include <fmt/core.h>

#include <list>

#include "conclab/cli.hpp"
#include "conclab/signals.hpp"
#include "conclab/socket.hpp"
#include "conclab/threading.hpp"
#include "menu_bot.hpp"

int main(int argc, char** argv) {
  CLI::App app{"Lab 09: the 10086 menu bot, a thread per caller."};
  conclab::NetFlags net{"127.0.0.1", 8888};
  conclab::add_net_flags(app, net, "listen on");
  double idle_timeout_s = 60;
  menu_bot::add_idle_flag(app, idle_timeout_s);

  return conclab::run_main(app, argc, argv, [&] {
    conclab::stop_on_signals();
    auto server = conclab::create_server(net.host, static_cast<std::uint16_t>(net.port));
    fmt::print("listening on {}\n", server.address());
    int served = 0;
    std::list<conclab::Thread> threads;
    try {
      for (;;) {
        auto [conn, peer] = server.accept();
        ++served;
        fmt::print("connection from {}\n", peer);
        std::erase_if(threads, [](conclab::Thread& t) { return !t.is_alive() && (t.join(), true); });
        threads.emplace_back(
            [idle_timeout_s](conclab::Socket connection, conclab::Address address) {
              try {
                menu_bot::process(connection, address, idle_timeout_s);
              } catch (const conclab::Interrupted&) {  // stopping: the main thread joins us
              }
            },
            std::move(conn), peer);
        try {
          threads.back().start();
        } catch (const conclab::ThreadStartError& e) {  // no thread for this caller: hang up on it only
          fmt::print(stderr, "{}: {}\n", peer, e.what());
          threads.pop_back();
        }
      }
    } catch (const conclab::Interrupted&) {
    }
    for (auto& t : threads) t.join();
    fmt::print("model=threaded served={}\n", served);
  });
}
