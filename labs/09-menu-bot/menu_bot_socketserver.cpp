// menu_bot_socketserver.cpp — the seed's "10086" menu bot on ThreadingTCPServer (lab 09).
//
// The form seed 003 hints at: socketserver does the accept loop and the
// thread per caller; the handler is just the conversation (menu_bot.hpp).
// Observe that it serves like menu_bot_threaded.cpp, without a loop or a
// list of threads of its own; the handler reaches the server's settings
// through `server`, as Python's self.server.
// See also: menu_bot_threaded.cpp, ../12-socketserver, python/menu_bot_socketserver.py.
#include <fmt/core.h>

#include <atomic>

#include "conclab/cli.hpp"
#include "conclab/signals.hpp"
#include "conclab/socketserver.hpp"
#include "menu_bot.hpp"

struct MenuBotHandler : conclab::BaseRequestHandler {
  using BaseRequestHandler::BaseRequestHandler;
  void handle() override;
};

using ThreadingTCPServer = conclab::ThreadingTCPServer<MenuBotHandler>;
struct MenuBotServer : ThreadingTCPServer {
  using ThreadingTCPServer::ThreadingTCPServer;
  double idle_timeout_s = 60;
  std::atomic<int> served{0};
};

void MenuBotHandler::handle() {
  auto& bot = static_cast<MenuBotServer&>(server);
  ++bot.served;
  fmt::print("connection from {}\n", client_address);
  menu_bot::process(request, client_address, bot.idle_timeout_s);
}

int main(int argc, char** argv) {
  CLI::App app{"Lab 09: the 10086 menu bot on ThreadingTCPServer."};
  conclab::NetFlags net{"127.0.0.1", 8888};
  conclab::add_net_flags(app, net, "listen on");
  double idle_timeout_s = 60;
  menu_bot::add_idle_flag(app, idle_timeout_s);

  return conclab::run_main(app, argc, argv, [&] {
    conclab::stop_on_signals();
    MenuBotServer server(net.host, static_cast<std::uint16_t>(net.port));
    server.idle_timeout_s = idle_timeout_s;
    fmt::print("listening on {}\n", server.server_address());
    try {
      server.serve_forever();
    } catch (const conclab::Interrupted&) {
    }
    server.server_close();  // waits for the callers still on the line (they end on the signal too)
    fmt::print("model=socketserver served={}\n", server.served.load());
  });
}
