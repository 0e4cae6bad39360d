// epoll_edge_echo.cpp — the seed 003 echo server on epoll, edge-triggered (lab 11).
//
// epoll with EPOLLET reports a socket once, when it *becomes* readable: the
// server must read it until EAGAIN (drain), or what is left waits for the
// next edge. Try --no-drain (one recv of 1024 bytes per report, as the
// level-triggered servers do): send 2000 bytes and only 1024 come back,
// the rest only when the client sends more. The README shows it.
// See also: epoll_echo.cpp (level-triggered), echo_loop.hpp (the loop).
#include "echo_loop.hpp"

int main(int argc, char** argv) {
  CLI::App app{"Lab 11: the seed 003 echo server over many clients, on epoll edge-triggered."};
  conclab::NetFlags net;
  mux::add_echo_flags(app, net);
  bool no_drain = false;
  app.add_flag("--no-drain", no_drain, "read once per report instead of until EAGAIN (shows what breaks)");
  return conclab::run_main(app, argc, argv, [&] {
    conclab::Selector<mux::Client*> selector(conclab::Backend::epoll_edge);
    mux::run_echo_server(selector, net, /*drain=*/!no_drain);
  });
}
