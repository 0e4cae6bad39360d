// select_echo.cpp — the seed 003 echo server on select() (lab 11).
//
// Read and write sets over every client: an idle client is just not ready, the
// others are served meanwhile. select() takes descriptors below FD_SETSIZE (1024) only.
// The loop itself is echo_loop.hpp; this file only picks the mechanism, so
// `diff select_echo.cpp poll_echo.cpp` shows all that changes.
// See also: echo_loop.hpp, python/select_echo.py (the seed's program in Python 3).
#include "echo_loop.hpp"

int main(int argc, char** argv) {
  CLI::App app{"Lab 11: the seed 003 echo server over many clients, on select()."};
  conclab::NetFlags net;
  mux::add_echo_flags(app, net);
  return conclab::run_main(app, argc, argv, [&] {
    conclab::Selector<mux::Client*> selector(conclab::Backend::select);
    mux::run_echo_server(selector, net, /*drain=*/false);
  });
}
