// server_designs.hpp — every server design of the fan-out benchmark (UNP
// vol. 1, 3rd ed., chapter 30, "Client/Server Design Alternatives", plus the
// seeds' event loops and socketserver servers), each a short function
// serving the fan-out protocol (fanout.hpp) on a listening socket until a
// stop signal (stop_on_signals()), then ending its workers and reporting.
//
//   conclab::stop_on_signals();
//   auto listener = conclab::create_server("127.0.0.1", 0);
//   auto report = conclab::fanout::serve("prefork-mutex", listener, {.workers = 15});
//   fmt::print("{}\n", conclab::fanout::summary_line(report));
//
// What every model does alike: a connection is *served* when its whole
// reply was sent, *refused* when it was closed without one (a bad count, a
// line too long, nothing said within `idle`, a close or reset before the
// reply ended). CPU is getrusage(RUSAGE_SELF) + RUSAGE_CHILDREN taken after
// every child has been reaped, the book's method. Models that fork do so
// from the calling thread before they start any thread: call serve() from a
// single-threaded program (fanout-server is one).
#pragma once

#include <chrono>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "conclab/fanout.hpp"
#include "conclab/socket.hpp"

namespace conclab::fanout {

struct ServerOptions {
  // Children or threads of the pool models (prefork-*, prethread-*); the
  // book's runs used 15.
  int workers = 15;
  // Service time: how long the server waits before replying. A blocking
  // sleep in the worker models; a timer in the event loops unless
  // blocking_sleep (the lesson: one sleeping request stalls the whole loop).
  std::chrono::milliseconds sleep{0};
  bool blocking_sleep = false;
  int max_bytes = kDefaultMaxBytes;
  // A connection that says nothing for this long is closed (refused): a
  // silent client never holds a worker or a loop for ever.
  std::chrono::milliseconds idle{10'000};
  // epoll-threads: how many loops (0: one per core this process may run on).
  int loops = 0;
};

struct ServerReport {
  std::string model;
  int workers = 0;  // size of the fixed pool (children, threads, loops); 0 when none
  long long served = 0;
  long long refused = 0;
  // Connections served by each child/thread/loop, in order; empty ("-") for
  // models without a fixed pool. A prefork child killed and replaced keeps
  // its slot: the count goes on in the replacement (the connection it was
  // serving is lost, counted in neither).
  std::vector<long long> per_worker;
  double cpu_user_s = 0;
  double cpu_sys_s = 0;
  long maxrss_kb = 0;           // this process
  long children_maxrss_kb = 0;  // the largest reaped child
};

// The models, in the book's order then the seeds': "iterative",
// "fork-per-client", "prefork-accept", ..., "floor".
[[nodiscard]] std::span<const std::string_view> server_models() noexcept;
[[nodiscard]] bool is_server_model(std::string_view model) noexcept;
// One line on how the model serves, for --help.
[[nodiscard]] std::string_view model_design(std::string_view model);

// Serves with `model` until a stop signal, then ends every worker and
// returns the report. Throws std::invalid_argument for an unknown model,
// std::system_error when the model cannot run at all (fork, thread start).
ServerReport serve(std::string_view model, Socket& listener, const ServerOptions& options);

// The summary line: "model=M workers=N served=S refused=R cpu_user_s=U
// cpu_sys_s=Y cpu_s=U+Y maxrss_kb=K children_maxrss_kb=C per_worker=c1,c2,..."
[[nodiscard]] std::string summary_line(const ServerReport& report);

// One connection of the protocol on a blocking socket, as the worker models
// serve it: read the count (within options.idle), wait options.sleep (awake
// to a stop signal), send the reply, read until the client closes. True
// when the reply was sent whole. Throws only Interrupted.
bool serve_connection(Socket& conn, const ServerOptions& options);

// Waits `duration`, or throws Interrupted as soon as a stop signal arrives
// (a plain sleep when stop_on_signals() was never called).
void pause(std::chrono::milliseconds duration);

}  // namespace conclab::fanout
