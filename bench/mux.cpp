// selectors/... and socketserver/... — conclab's selectors.hpp and
// socketserver.hpp, each row beside its CPython peer in bench/python/bench_mux.py.
//
//   selectors/<backend>/fds:N  one wait with 1 ready descriptor among N idle registered ones
//   socketserver/shutdown      shutdown() of a TCPServer whose serve_forever() runs in a thread
//
// One iteration of a selectors row is: write the ready eventfd, select(),
// read it back. The write makes a new edge for epoll-edge (a descriptor that
// stays readable is reported once there); every back end does the same
// three calls so that the rows compare, and the write and read cost the same
// at every N: what grows with N is the wait. The idle descriptors are
// eventfds that nobody writes; the ready one is opened last, so it has the
// highest number (select() scans up to it anyway). select() cannot watch a
// descriptor >= FD_SETSIZE: conclab's Selector refuses to register it, and
// the row is written as impossible (bench.hpp's Impossible), not failed.
//
// CONCLAB_BENCH_SHUTDOWN_ITERATIONS=N sets socketserver/shutdown's 16
// shutdowns (the smoke test makes them few: each waits up to 0.5 s first).
// These rows register themselves, as the net/ rows do.
#include <fmt/core.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/select.h>
#include <unistd.h>

#include <charconv>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <variant>
#include <vector>

#include "bench.hpp"
#include "conclab/clock.hpp"
#include "conclab/fd.hpp"
#include "conclab/selectors.hpp"
#include "conclab/socket.hpp"
#include "conclab/socketserver.hpp"
#include "conclab/threading.hpp"

namespace conclab::bench {
namespace {

constexpr int kFdCounts[] = {10, 100, 1000, 10000};
constexpr std::chrono::seconds kWaitLimit{10};  // the ready descriptor is there at once: a limit, not a hang

unique_fd open_eventfd() { return unique_fd(check(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK), "eventfd")); }

// Lets this process open `more` descriptors beyond those it has, raising the
// soft RLIMIT_NOFILE (up to the hard one) for as long as it lives.
class DescriptorRoom {
 public:
  explicit DescriptorRoom(int more) {
    check(::getrlimit(RLIMIT_NOFILE, &before_), "getrlimit(RLIMIT_NOFILE)");
    const rlim_t needed = static_cast<rlim_t>(open_descriptors() + more);
    if (needed <= before_.rlim_cur) return;
    if (before_.rlim_max != RLIM_INFINITY && needed > before_.rlim_max)
      throw std::runtime_error(
          fmt::format("needs {} descriptors; the hard RLIMIT_NOFILE is {} (ulimit -Hn)", needed, before_.rlim_max));
    rlimit raised{needed, before_.rlim_max};
    check(::setrlimit(RLIMIT_NOFILE, &raised), "setrlimit(RLIMIT_NOFILE)");
    raised_ = true;
  }
  ~DescriptorRoom() {
    if (raised_) ::setrlimit(RLIMIT_NOFILE, &before_);
  }
  DescriptorRoom(const DescriptorRoom&) = delete;
  DescriptorRoom& operator=(const DescriptorRoom&) = delete;

 private:
  rlimit before_{};
  bool raised_ = false;
};

void wait_cost(benchmark::State& state, Backend backend, int idle_count) {
  DescriptorRoom room(idle_count + 8);  // + the ready one, epoll's own, a few spare
  std::vector<unique_fd> idle;
  idle.reserve(static_cast<std::size_t>(idle_count));
  for (int i = 0; i < idle_count; ++i) idle.push_back(open_eventfd());
  const unique_fd ready = open_eventfd();
  Selector<> sel(backend);
  try {
    for (const unique_fd& fd : idle) sel.register_fd(fd.get(), EVENT_READ);
    sel.register_fd(ready.get(), EVENT_READ);
  } catch (const SelectorError& e) {
    if (backend == Backend::select) throw Impossible(e.what());  // a descriptor >= FD_SETSIZE
    throw;
  }
  const std::uint64_t one = 1;
  std::uint64_t value = 0;
  for (auto _ : state) {
    check(::write(ready.get(), &one, sizeof one), "write(eventfd)");
    auto got = sel.select(kWaitLimit);
    if (got.size() != 1 || got[0].key.fd != ready.get())
      throw std::runtime_error(
          fmt::format("select() reported {} descriptors, expected the ready one alone", got.size()));
    check(::read(ready.get(), &value, sizeof value), "read(eventfd)");
  }
  state.counters["fds"] = static_cast<double>(idle_count);
}

// --- socketserver/shutdown ---------------------------------------------------------

constexpr int kDefaultShutdowns = 16;
constexpr int kMaxShutdowns = 1000;
constexpr std::string_view kRequest = "ping";
constexpr std::string_view kResponse = "pong";
// CPython's serve_forever() looks at the shutdown flag every 0.5 s (gh-88932).
constexpr std::chrono::duration<double> kPythonPollInterval{0.5};

// CONCLAB_BENCH_SHUTDOWN_ITERATIONS, else 16; or what is wrong with it.
std::variant<int, std::string> shutdown_iterations() {
  const char* text = std::getenv("CONCLAB_BENCH_SHUTDOWN_ITERATIONS");
  if (text == nullptr || *text == '\0') return kDefaultShutdowns;
  int n = 0;
  const char* end = text + std::strlen(text);
  auto [p, err] = std::from_chars(text, end, n);
  if (err != std::errc() || p != end || n < 1 || n > kMaxShutdowns)
    return fmt::format("CONCLAB_BENCH_SHUTDOWN_ITERATIONS='{}' is not a number from 1 to {}", text, kMaxShutdowns);
  return n;
}

// Shutdown i of n comes (i + 0.5) / n of a poll interval after the request was
// served: evenly spread over CPython's interval, so that the Python peer (the
// same delays) measures its mean wait, about half the interval, not one
// unlucky phase. conclab's loop does not poll: the delay changes nothing for it.
std::chrono::duration<double> phase_delay(int i, int n) { return kPythonPollInterval * ((i + 0.5) / n); }

struct Answer : BaseRequestHandler {
  using BaseRequestHandler::BaseRequestHandler;
  void handle() override {
    if (request.recv_exact(kRequest.size()) == kRequest) request.send_all(kResponse);
  }
};
using Server = TCPServer<Answer>;

// serve_forever() in a conclab::Thread, started at once; shut down and joined
// however the iteration ends.
class Serving {
 public:
  explicit Serving(Server& server) : server_(server), thread_([&server] { server.serve_forever(); }) {
    thread_.start();
  }
  ~Serving() { server_.shutdown(); }  // then thread_'s destructor joins it
  Serving(const Serving&) = delete;
  Serving& operator=(const Serving&) = delete;
  // Joins the loop's thread; rethrows what ended it, if anything did.
  void join() {
    thread_.join();
    if (auto error = thread_.exception()) std::rethrow_exception(error);
  }

 private:
  Server& server_;
  Thread thread_;
};

void shutdown_latency(benchmark::State& state, int shutdowns) {
  int i = 0;
  for (auto _ : state) {
    Server server("127.0.0.1", 0);
    Serving serving(server);
    {
      Socket client = create_connection("127.0.0.1", server.server_address().port(), kWaitLimit);
      client.send_all(kRequest);
      if (client.recv_exact(kResponse.size()) != kResponse) throw std::runtime_error("shutdown: a wrong response");
    }
    std::this_thread::sleep_for(phase_delay(i++, shutdowns));
    Stopwatch clock;
    server.shutdown();
    state.SetIterationTime(clock.seconds());
    serving.join();
  }
}

[[maybe_unused]] const bool registered = [] {
  for (Backend backend : kBackends)
    for (int n : kFdCounts) {
      auto row = [backend, n](benchmark::State& state) { wait_cost(state, backend, n); };
      add_row(fmt::format("selectors/{}/fds:{}", backend_name(backend), n), row, benchmark::kMicrosecond)
          ->UseRealTime();
    }
  // A bad CONCLAB_BENCH_SHUTDOWN_ITERATIONS fails this row, saying why.
  const auto shutdowns = shutdown_iterations();
  auto row = [shutdowns](benchmark::State& state) {
    if (const auto* error = std::get_if<std::string>(&shutdowns)) throw std::invalid_argument(*error);
    shutdown_latency(state, std::get<int>(shutdowns));
  };
  const int* count = std::get_if<int>(&shutdowns);
  add_row("socketserver/shutdown", row, benchmark::kMicrosecond)->UseManualTime()->Iterations(count ? *count : 1);
  return true;
}();

}  // namespace
}  // namespace conclab::bench
