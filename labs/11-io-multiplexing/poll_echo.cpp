// poll_echo.cpp — the seed 003 echo server on poll() (lab 11).
//
// The same server as select_echo.cpp with poll(): an array of the registered
// descriptors instead of a bit set, so no FD_SETSIZE limit; still O(registered) per call.
// The loop itself is echo_loop.hpp; this file only picks the mechanism, so
// `diff select_echo.cpp poll_echo.cpp` shows all that changes.
// See also: echo_loop.hpp, python/select_echo.py (the seed's program in Python 3).
#include "echo_loop.hpp"

int main(int argc, char** argv) {
  CLI::App app{"Lab 11: the seed 003 echo server over many clients, on poll()."};
  conclab::NetFlags net;
  mux::add_echo_flags(app, net);
  return conclab::run_main(app, argc, argv, [&] {
    conclab::Selector<mux::Client*> selector(conclab::Backend::poll);
    mux::run_echo_server(selector, net, /*drain=*/false);
  });
}
