// epoll_echo.cpp — the seed 003 echo server on epoll, level-triggered (lab 11).
//
// The same server as select_echo.cpp with epoll (level-triggered): the kernel
// keeps the interest list and returns only the ready descriptors: O(ready) per call.
// The loop itself is echo_loop.hpp; this file only picks the mechanism, so
// `diff select_echo.cpp epoll_echo.cpp` shows all that changes.
// See also: echo_loop.hpp, python/select_echo.py (the seed's program in Python 3).
#include "echo_loop.hpp"

int main(int argc, char** argv) {
  CLI::App app{"Lab 11: the seed 003 echo server over many clients, on epoll, level-triggered."};
  conclab::NetFlags net;
  mux::add_echo_flags(app, net);
  return conclab::run_main(app, argc, argv, [&] {
    conclab::Selector<mux::Client*> selector(conclab::Backend::epoll);
    mux::run_echo_server(selector, net, /*drain=*/false);
  });
}
