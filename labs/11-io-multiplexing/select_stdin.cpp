// select_stdin.cpp — the seed 003 select() on standard input, with a 1 s timeout (lab 11).
//
// select() waits for stdin to be readable, at most --timeout seconds: a line
// per timeout, an echo of each line typed, and at the end of input (Ctrl-D)
// a summary line. stdin is read with read(2), not a buffered reader: a
// buffered reader keeps the lines it read ahead, and select() on the
// descriptor cannot see them (the seed's sys.stdin.readline() has that bug).
// See also: python/select_stdin.py, select_echo.cpp (select over sockets).
#include <fmt/core.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <string>

#include "conclab/cli.hpp"
#include "conclab/error.hpp"
#include "conclab/selectors.hpp"
#include "conclab/signals.hpp"

int main(int argc, char** argv) {
  CLI::App app{"Lab 11: select() on stdin with a timeout: echoes each line, a line per timeout."};
  double timeout_s = 1;
  app.add_option("--timeout", timeout_s, "seconds select() waits for input")
      ->check(CLI::Range(0.001, 3600.0))
      ->capture_default_str();

  return conclab::run_main(app, argc, argv, [&] {
    conclab::stop_on_signals();
    conclab::Selector<> selector(conclab::Backend::select);
    selector.register_fd(STDIN_FILENO, conclab::EVENT_READ);
    const auto timeout = std::chrono::duration<double>(timeout_s);
    int lines = 0;
    int timeouts = 0;
    std::string pending;  // read, up to the end of a line not yet seen
    auto show = [&](std::string line) {
      ++lines;
      fmt::print("select get stdin {}\n", line);
    };
    try {
      for (;;) {
        if (selector.select(std::chrono::duration_cast<std::chrono::nanoseconds>(timeout)).empty()) {
          ++timeouts;
          fmt::print("timeout: no input for {:g} s\n", timeout_s);
          continue;
        }
        char buffer[4096];
        const ssize_t n = ::read(STDIN_FILENO, buffer, sizeof buffer);
        if (n < 0) {
          if (errno == EINTR) continue;
          conclab::throw_errno("read");
        }
        if (n == 0) break;  // end of input
        pending.append(buffer, static_cast<std::size_t>(n));
        for (std::size_t nl; (nl = pending.find('\n')) != std::string::npos; pending.erase(0, nl + 1))
          show(pending.substr(0, nl));
      }
      if (!pending.empty()) show(pending);  // a last line without its newline
    } catch (const conclab::Interrupted&) {
    }
    fmt::print("model=select lines={} timeouts={}\n", lines, timeouts);
  });
}
