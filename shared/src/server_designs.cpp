// The server designs (server_designs.hpp): the list, the dispatch, the
// report, one connection served on a blocking socket, and the two simplest
// models, iterative and floor. The others: server_designs_processes.cpp,
// _threads.cpp, _loops.cpp.
#include "conclab/server_designs.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <thread>
#include <unordered_map>
#include <vector>

#include <fmt/format.h>

#include "conclab/error.hpp"
#include "conclab/fd.hpp"
#include "conclab/signals.hpp"
#include "conclab/threading.hpp"
#include "server_designs_common.hpp"

namespace conclab::fanout {

namespace {

struct Model {
  std::string_view name;
  std::string_view design;
};

constexpr Model kModels[] = {
    {"iterative", "one connection at a time, in the main thread (the book's baseline; the seeds' serial)"},
    {"fork-per-client", "a child per connection, reaped as it ends (the seeds' forked)"},
    {"prefork-accept", "N children, all blocked in accept() on the shared listener"},
    {"prefork-flock", "N children, an fcntl() lock on a removed temporary file around accept()"},
    {"prefork-mutex",
     "N children, a process-shared mutex around accept(); lock and per-child counters in one SharedArray"},
    {"prefork-fdpass", "the parent accepts and passes each connection to a free child over a Unix socket"},
    {"thread-per-client", "a thread per connection, joined as it ends (the seeds' threaded); an acceptor thread"},
    {"prethread-mutex", "N threads, conclab::RLock around accept() (the seeds' thread-locked)"},
    {"prethread-main-accept", "the main thread accepts into a bounded queue that N threads serve"},
    {"select", "one thread, a select() loop, the sleep a timer"},
    {"poll", "one thread, a poll() loop, the sleep a timer"},
    {"epoll", "one thread, an epoll loop, the sleep a timer"},
    {"epoll-threads", "one epoll loop per core, all on the shared listener"},
    {"socketserver-threading", "conclab's ThreadingTCPServer (a thread per request)"},
    {"socketserver-forking", "conclab's ForkingTCPServer (a child per request, at most 40 at once)"},
    {"floor", "the least code that serves the protocol: one thread, raw epoll, no objects, no sleep"},
};

constexpr auto kModelNames = [] {
  std::array<std::string_view, std::size(kModels)> names{};
  for (std::size_t i = 0; i < names.size(); ++i) names[i] = kModels[i].name;
  return names;
}();

double seconds(const timeval& t) { return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6; }

}  // namespace

std::span<const std::string_view> server_models() noexcept { return kModelNames; }

bool is_server_model(std::string_view model) noexcept {
  return std::find(kModelNames.begin(), kModelNames.end(), model) != kModelNames.end();
}

std::string_view model_design(std::string_view model) {
  for (const auto& m : kModels)
    if (m.name == model) return m.design;
  throw std::invalid_argument(fmt::format("no server model '{}' (models: {})", model, fmt::join(kModelNames, ", ")));
}

ServerReport serve(std::string_view model, Socket& listener, const ServerOptions& options) {
  (void)model_design(model);  // throws for an unknown one
  if (options.workers < 1) throw std::invalid_argument("serve: workers must be at least 1");
  (void)reply(0);  // the reply pattern is built now, before any fork or thread
  using namespace detail;
  Counts counts;
  if (model == "iterative") counts = serve_iterative(listener, options);
  else if (model == "floor") counts = serve_floor(listener, options);
  else if (model == "fork-per-client") counts = serve_fork_per_client(listener, options);
  else if (model == "prefork-accept") counts = serve_prefork(listener, options, AcceptLock::none);
  else if (model == "prefork-flock") counts = serve_prefork(listener, options, AcceptLock::fcntl);
  else if (model == "prefork-mutex") counts = serve_prefork(listener, options, AcceptLock::mutex);
  else if (model == "prefork-fdpass") counts = serve_prefork_fdpass(listener, options);
  else if (model == "thread-per-client") counts = serve_thread_per_client(listener, options);
  else if (model == "prethread-mutex") counts = serve_prethread_mutex(listener, options);
  else if (model == "prethread-main-accept") counts = serve_prethread_main_accept(listener, options);
  else if (model == "select") counts = serve_event_loop(listener, options, Backend::select);
  else if (model == "poll") counts = serve_event_loop(listener, options, Backend::poll);
  else if (model == "epoll") counts = serve_event_loop(listener, options, Backend::epoll);
  else if (model == "epoll-threads") counts = serve_epoll_threads(listener, options);
  else if (model == "socketserver-threading") counts = serve_socketserver_threading(listener, options);
  else counts = serve_socketserver_forking(listener, options);

  // Every child has been reaped by now: RUSAGE_CHILDREN holds them all.
  rusage self{}, children{};
  ::getrusage(RUSAGE_SELF, &self);
  ::getrusage(RUSAGE_CHILDREN, &children);
  ServerReport report;
  report.model = std::string(model);
  report.workers = counts.workers;
  report.served = counts.served;
  report.refused = counts.refused;
  report.per_worker = std::move(counts.per_worker);
  report.cpu_user_s = seconds(self.ru_utime) + seconds(children.ru_utime);
  report.cpu_sys_s = seconds(self.ru_stime) + seconds(children.ru_stime);
  report.maxrss_kb = self.ru_maxrss;
  report.children_maxrss_kb = children.ru_maxrss;
  return report;
}

std::string summary_line(const ServerReport& r) {
  const std::string per_worker = r.per_worker.empty() ? "-" : fmt::format("{}", fmt::join(r.per_worker, ","));
  return fmt::format(
      "model={} workers={} served={} refused={} cpu_user_s={:.3f} cpu_sys_s={:.3f} cpu_s={:.3f} maxrss_kb={} "
      "children_maxrss_kb={} per_worker={}",
      r.model, r.workers, r.served, r.refused, r.cpu_user_s, r.cpu_sys_s, r.cpu_user_s + r.cpu_sys_s, r.maxrss_kb,
      r.children_maxrss_kb, per_worker);
}

void pause(std::chrono::milliseconds duration) {
  using Clock = std::chrono::steady_clock;
  const auto until = Clock::now() + duration;
  if (stop_fd() < 0) {
    std::this_thread::sleep_until(until);
    return;
  }
  for (;;) {
    throw_if_stopped();
    const auto left = std::chrono::ceil<std::chrono::milliseconds>(until - Clock::now()).count();
    if (left <= 0) return;
    pollfd stop{stop_fd(), POLLIN, 0};
    ::poll(&stop, 1, static_cast<int>(std::min<long long>(left, 1 << 30)));
  }
}

bool serve_connection(Socket& conn, const ServerOptions& options) {
  try {
    conn.settimeout(options.idle);
    // The request line: at most kMaxRequestLine bytes, up to its newline.
    char line[kMaxRequestLine];
    std::size_t have = 0;
    const char* newline = nullptr;
    while (!newline) {
      if (have == sizeof line) return false;  // too long: refused
      const std::size_t n = conn.recv_into(std::as_writable_bytes(std::span(line + have, sizeof line - have)));
      if (n == 0) return false;  // closed before the request
      newline = static_cast<const char*>(std::memchr(line + have, '\n', n));
      have += n;
    }
    const auto count = parse_count(std::string_view(line, static_cast<std::size_t>(newline - line)), options.max_bytes);
    if (!count) return false;
    if (options.sleep.count() > 0) pause(options.sleep);
    conn.send_all(reply(*count));
  } catch (const Interrupted&) {
    throw;
  } catch (const std::exception&) {
    return false;  // silent too long, reset, closed mid-reply: the server goes on
  }
  try {
    // The client closes first: read until it has (what it sends is ignored).
    char scratch[512];
    while (conn.recv_into(std::as_writable_bytes(std::span(scratch))) > 0) {
    }
  } catch (const std::exception&) {
    // Served all the same, even when a stop signal came now: the worker's
    // next call (accept, recv_fd) sees the stop and ends it.
  }
  return true;
}

namespace detail {

int open_pidfd(pid_t pid) {
  return check(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)), "pidfd_open");
}

void say_out_of_resources(int err, bool& said) {
  if (!said)
    fmt::print(stderr, "fanout-server: accept: {}; not accepting for {} ms (connections wait in the backlog)\n",
               std::strerror(err), kAcceptBackoff.count());
  said = true;
}

int usable_cpus() {
  cpu_set_t set;
  if (::sched_getaffinity(0, sizeof set, &set) == 0) return std::max(1, CPU_COUNT(&set));
  return static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
}

void run_threads(int n, const char* name, const std::function<void(int)>& body) {
  std::vector<Thread> threads;
  threads.reserve(static_cast<std::size_t>(n));
  for (int slot = 0; slot < n; ++slot) {
    threads.emplace_back([&body, slot] {
      try {
        body(slot);
      } catch (const Interrupted&) {
      }
    });
    threads.back().set_name(fmt::format("{}-{}", name, slot));
    try {
      threads.back().start();
    } catch (...) {
      threads.pop_back();
      if (stop_fd() >= 0) ::kill(::getpid(), SIGTERM);
      throw;  // the destructors join the others, ended by the stop signal
    }
  }
  for (auto& t : threads) t.join();
}

Counts pool_counts(int n, const std::vector<long long>& served, const std::vector<long long>& refused) {
  Counts counts;
  counts.workers = n;
  counts.per_worker = served;
  for (auto s : served) counts.served += s;
  for (auto r : refused) counts.refused += r;
  return counts;
}

// ---------------------------------------------------------------- iterative

Counts serve_iterative(Socket& listener, const ServerOptions& options) {
  Counts counts;
  try {
    for (;;) {
      auto [conn, peer] = listener.accept();  // EMFILE: waits 50 ms and tries again (socket.hpp)
      ++(serve_connection(conn, options) ? counts.served : counts.refused);
    }
  } catch (const Interrupted&) {
  }
  return counts;
}

// ---------------------------------------------------------------- floor

// The least code that serves the protocol without ever waiting on one
// client: one thread, raw epoll, non-blocking descriptors, a few bytes of
// state per connection, no timers, no objects, no sleep. What it reaches is
// the bound of this client and loopback TCP on this machine (an iterative
// server would instead wait a round trip for each client's close). Silent
// connections are swept every quarter of options.idle; EMFILE stops the
// accepting for kAcceptBackoff.
Counts serve_floor(Socket& listener, const ServerOptions& options) {
  using Clock = std::chrono::steady_clock;
  struct Connection {
    char line[kMaxRequestLine];
    std::size_t got = 0;
    std::string_view left;  // of the reply, once the request was read
    bool replied = false;   // the request was read (left: what is still to send)
    std::uint32_t watching = 0;  // the events epoll watches it for (0: not registered)
    Clock::time_point last;
  };
  Counts counts;
  const int lfd = listener.fileno();
  unique_fd poller(check(::epoll_create1(EPOLL_CLOEXEC), "epoll_create1"));
  const auto control = [&](int op, int fd, std::uint32_t events) {
    epoll_event event{};
    event.events = events;
    event.data.fd = fd;
    check(::epoll_ctl(poller.get(), op, fd, &event), "epoll_ctl");
  };
  control(EPOLL_CTL_ADD, lfd, EPOLLIN);
  if (stop_fd() >= 0) control(EPOLL_CTL_ADD, stop_fd(), EPOLLIN);
  std::unordered_map<int, Connection> connections;
  const auto finish = [&](int fd, bool served) {
    ::close(fd);  // (which takes it out of epoll too)
    connections.erase(fd);
    ++(served ? counts.served : counts.refused);
  };
  // A system call to epoll only when what the connection waits for changes.
  const auto watch = [&](int fd, Connection& c, std::uint32_t events) {
    if (c.watching == events) return;
    control(c.watching ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, fd, events);
    c.watching = events;
  };
  // Does all the connection allows now: read the request, send the reply,
  // read until the client's close; where it would block, epoll watches.
  const auto step = [&](int fd, Connection& c) {
    while (!c.replied) {
      const ssize_t got = ::recv(fd, c.line + c.got, sizeof c.line - c.got, 0);
      if (got < 0 && errno == EINTR) continue;
      if (got < 0 && errno == EAGAIN) return watch(fd, c, EPOLLIN);
      if (got <= 0) return finish(fd, false);
      c.got += static_cast<std::size_t>(got);
      const char* newline = static_cast<const char*>(std::memchr(c.line, '\n', c.got));
      if (!newline) {
        if (c.got == sizeof c.line) return finish(fd, false);  // a line too long
        continue;
      }
      const auto count =
          parse_count(std::string_view(c.line, static_cast<std::size_t>(newline - c.line)), options.max_bytes);
      if (!count) return finish(fd, false);
      c.left = reply(*count);
      c.replied = true;
    }
    while (!c.left.empty()) {
      const ssize_t sent = ::send(fd, c.left.data(), c.left.size(), MSG_NOSIGNAL);
      if (sent < 0 && errno == EINTR) continue;
      if (sent < 0 && errno == EAGAIN) return watch(fd, c, EPOLLOUT);
      if (sent < 0) return finish(fd, false);
      c.left.remove_prefix(static_cast<std::size_t>(sent));
    }
    for (;;) {  // the reply is out: what comes now is the client's close
      char sink[512];
      const ssize_t got = ::recv(fd, sink, sizeof sink, 0);
      if (got > 0 || (got < 0 && errno == EINTR)) continue;
      if (got < 0 && errno == EAGAIN) return watch(fd, c, EPOLLIN);
      return finish(fd, true);
    }
  };
  bool accepting = true, said = false;
  Clock::time_point resume{};
  const auto sweep_every = std::max(options.idle / 4, std::chrono::milliseconds(10));
  auto next_sweep = Clock::now() + sweep_every;
  std::array<epoll_event, 256> ready{};
  while (!stop_requested()) {
    const int n = ::epoll_wait(poller.get(), ready.data(), static_cast<int>(ready.size()), 100);
    if (n < 0 && errno == EINTR) continue;
    check(n, "epoll_wait");
    const auto now = Clock::now();
    for (int i = 0; i < n; ++i) {
      const int fd = ready[static_cast<std::size_t>(i)].data.fd;
      if (fd == lfd) {
        for (;;) {
          const int conn = ::accept4(lfd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
          if (conn >= 0) {
            said = false;
            Connection& c = connections[conn];
            c.last = now;
            step(conn, c);  // the request is often there already: no epoll call at all then
            continue;
          }
          if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
            say_out_of_resources(errno, said);
            control(EPOLL_CTL_DEL, lfd, 0);
            accepting = false;
            resume = now + kAcceptBackoff;
          }
          break;  // EAGAIN: all taken; ECONNABORTED, EINTR: the next wake-up
        }
        continue;
      }
      auto it = connections.find(fd);
      if (it == connections.end()) continue;  // the stop descriptor
      it->second.last = now;
      step(fd, it->second);
    }
    if (!accepting && now >= resume) {
      control(EPOLL_CTL_ADD, lfd, EPOLLIN);
      accepting = true;
    }
    if (now >= next_sweep) {
      std::vector<int> idle;
      for (const auto& [fd, c] : connections)
        if (now - c.last >= options.idle) idle.push_back(fd);
      for (int fd : idle) finish(fd, connections[fd].replied && connections[fd].left.empty());
      next_sweep = now + sweep_every;
    }
  }
  // Stopped: a reply that was sent whole counts as served, as in every model.
  while (!connections.empty()) {
    const auto it = connections.begin();
    finish(it->first, it->second.replied && it->second.left.empty());
  }
  return counts;
}

}  // namespace detail

}  // namespace conclab::fanout
