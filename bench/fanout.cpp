// fanout/<model>/clients:C/sleep_ms:T — the client fan-out workload (UNP
// chapter 30): C clients at once against `fanout-server --model <model>`,
// each doing R requests of kFanoutBytes (a connection each), every request
// held T ms by the server. The server is a program of its own (its CPU time
// is its own, children included, as the book measures it); the clients are
// conclab's epoll driver (fanout_client.hpp) in this process. One iteration
// is one fan-out; its time is the driver's wall time (UseManualTime): the
// server's start and stop are outside it.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fmt/core.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "bench.hpp"
#include "conclab/clock.hpp"
#include "conclab/fanout_client.hpp"
#include "conclab/fd.hpp"

extern char** environ;

namespace conclab::bench {
namespace {

namespace fanout = conclab::fanout;

// How a model runs the requests: how many at once, given C (the pool models
// have kFanoutWorkers workers), and whether it can take C at all.
struct FanoutModel {
  const char* name;
  int (*concurrency)(int clients);
  // Empty, or why the model cannot serve C clients at once here (the row is
  // written as impossible, and the report says why).
  std::string (*impossible)(int clients);
};

int one(int) { return 1; }
int each(int clients) { return clients; }
int pool(int) { return kFanoutWorkers; }
// ForkingMixIn's max_children (40, as CPython's): more clients wait for a child to end.
int forking_server(int clients) { return std::min(clients, 40); }
std::string can(int) { return {}; }
// select() cannot watch a descriptor >= FD_SETSIZE (1024).
std::string select_limit(int clients) {
  return clients + 16 >= 1024 ? fmt::format("select() cannot watch {} connections: FD_SETSIZE is 1024", clients)
                              : std::string();
}
// A process per connection: C processes at once, each tens of MB of address
// space and a pid of 32,768; past a thousand this measures the machine.
std::string process_limit(int clients) {
  return clients > 1000 ? fmt::format("{} processes at once (one per client): past 1,000 this machine's pids and "
                                      "memory decide, not the design", clients)
                        : std::string();
}

const FanoutModel kFanoutModels[] = {
    {"floor", one, can},
    {"iterative", one, can},
    {"fork-per-client", each, process_limit},
    {"prefork-accept", pool, can},
    {"prefork-flock", pool, can},
    {"prefork-mutex", pool, can},
    {"prefork-fdpass", pool, can},
    {"thread-per-client", each, can},
    {"prethread-mutex", pool, can},
    {"prethread-main-accept", pool, can},
    {"select", each, select_limit},
    {"poll", each, can},
    {"epoll", each, can},
    {"epoll-threads", each, can},
    {"socketserver-threading", each, can},
    {"socketserver-forking", forking_server, process_limit},
};

// R: the sleep-free cases make kFanoutConnections connections in all (the
// book's table is per connection); with a service time, one request each.
int requests_per_client(const FanoutCase& c, int connections) {
  return c.sleep_ms == 0 ? std::max(1, connections / c.clients) : 1;
}

bool is_floor(const FanoutModel& model) { return model.name == std::string_view("floor"); }

// The floor never sleeps: at a case with a service time it puts the same C x
// R connections through with none, the least this machine needs for them.
// The report adds its time to a design's ideal: the best that design can do
// here ("vs best").
int server_sleep_ms(const FanoutModel& model, const FanoutCase& c) { return is_floor(model) ? 0 : c.sleep_ms; }

// T x ceil(C x R / concurrency): the wall time with no overhead. The
// iterative server serves one connection at a time; the floor has no T.
double fanout_ideal_seconds(const FanoutModel& model, const FanoutCase& c, int connections) {
  if (is_floor(model)) return 0;
  const double total = double(c.clients) * requests_per_client(c, connections);
  return c.sleep_ms / 1000.0 * std::ceil(total / std::min(model.concurrency(c.clients), c.clients));
}

// "key=value key=value" -> map.
std::map<std::string, std::string> parse_pairs(const std::string& line) {
  std::map<std::string, std::string> out;
  size_t i = 0;
  while (i < line.size()) {
    size_t end = line.find(' ', i);
    if (end == std::string::npos) end = line.size();
    const std::string pair = line.substr(i, end - i);
    if (auto eq = pair.find('='); eq != std::string::npos) out[pair.substr(0, eq)] = pair.substr(eq + 1);
    i = end + 1;
  }
  return out;
}

// fanout-server, next to conclab-bench (both in build/<preset>/bin/).
std::string server_program() {
  auto path = std::filesystem::read_symlink("/proc/self/exe").parent_path() / "fanout-server";
  if (!std::filesystem::exists(path)) throw std::runtime_error(path.string() + " not found: build it (fanout-server)");
  return path.string();
}

// One fanout-server process: started with posix_spawn (safe in a process
// with threads), its stdout read through a pipe: "listening on HOST:PORT"
// first, the summary line after SIGTERM. Killed and reaped if the row fails.
class ServerProcess {
 public:
  ServerProcess(const std::string& model, int sleep_ms) {
    int fds[2];
    check(::pipe2(fds, O_CLOEXEC), "pipe2");
    out_ = unique_fd(fds[0]);
    unique_fd write_end(fds[1]);
    const std::vector<std::string> args{server_program(), "--model", model, "--port", "0", "--sleep-ms",
                                        std::to_string(sleep_ms), "--workers", std::to_string(kFanoutWorkers)};
    std::vector<char*> argv;
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, write_end.get(), STDOUT_FILENO);
    const int err = ::posix_spawn(&pid_, argv[0], &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    if (err != 0) throw_errno("posix_spawn " + args[0], err);
    write_end.reset();
    const std::string first = read_line(std::chrono::seconds(30));
    const std::string prefix = "listening on ";
    const auto colon = first.rfind(':');
    if (!first.starts_with(prefix) || colon == std::string::npos)
      throw std::runtime_error("fanout-server --model " + model + " said '" + first + "', not 'listening on HOST:PORT'");
    port_ = std::stoi(first.substr(colon + 1));
  }
  // A row that failed: SIGTERM first, so that the server ends and reaps its
  // children (a SIGKILL would leave prefork children blocked in accept(),
  // holding the port); SIGKILL only if it has not ended within 10 s.
  ~ServerProcess() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGTERM);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (::waitpid(pid_, nullptr, WNOHANG) == 0) {
      if (std::chrono::steady_clock::now() >= deadline) {
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, nullptr, 0);
        return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }
  ServerProcess(const ServerProcess&) = delete;
  ServerProcess& operator=(const ServerProcess&) = delete;

  [[nodiscard]] int port() const { return port_; }

  // SIGTERM, then its summary line (every worker ended), then its exit.
  std::map<std::string, std::string> stop() {
    check(::kill(pid_, SIGTERM), "kill");
    const std::string line = read_line(std::chrono::seconds(60));
    int status = 0;
    while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
    pid_ = -1;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
      throw std::runtime_error("fanout-server ended with status " + std::to_string(status) + " after '" + line + "'");
    return parse_pairs(line);
  }

 private:
  // The next line of the server's stdout, within `limit`.
  std::string read_line(std::chrono::milliseconds limit) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    for (;;) {
      if (auto nl = buffer_.find('\n'); nl != std::string::npos) {
        std::string line = buffer_.substr(0, nl);
        buffer_.erase(0, nl + 1);
        return line;
      }
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) throw std::runtime_error("fanout-server: no line within the time limit");
      pollfd p{out_.get(), POLLIN, 0};
      const int ready = ::poll(&p, 1, static_cast<int>(left.count()));
      if (ready < 0 && errno == EINTR) continue;
      check(ready, "poll");
      if (ready == 0) continue;
      char chunk[4096];
      const ssize_t n = ::read(out_.get(), chunk, sizeof chunk);
      if (n < 0 && errno == EINTR) continue;
      check(n, "read");
      if (n == 0) throw std::runtime_error("fanout-server: its output ended before a line ('" + buffer_ + "')");
      buffer_.append(chunk, static_cast<size_t>(n));
    }
  }

  pid_t pid_ = -1;
  unique_fd out_;
  std::string buffer_;
  int port_ = 0;
};

double number(const std::map<std::string, std::string>& pairs, const std::string& key) {
  auto it = pairs.find(key);
  if (it == pairs.end()) throw std::runtime_error("fanout-server's summary has no " + key);
  return std::stod(it->second);
}

void fanout_row(benchmark::State& state, const FanoutModel& model, FanoutCase c, int connections) {
  if (auto why = model.impossible(c.clients); !why.empty()) throw Impossible(why);
  ServerProcess server(model.name, server_sleep_ms(model, c));
  fanout::ClientOptions options{.port = server.port(), .clients = c.clients,
                                .requests = requests_per_client(c, connections), .bytes = kFanoutBytes,
                                .timeout = std::chrono::milliseconds(10'000 + c.sleep_ms),
                                .cap = std::chrono::milliseconds(120'000)};
  std::vector<double> latencies;
  std::int64_t ok = 0, errors = 0, unfinished = 0;
  double wall = 0;
  int fd_limit = 0, max_open = 0;
  for (auto _ : state) {
    const fanout::ClientReport report = fanout::run_clients(options);
    state.SetIterationTime(report.wall_s);
    latencies.insert(latencies.end(), report.latencies_ms.begin(), report.latencies_ms.end());
    ok += report.ok;
    errors += report.error_count();
    unfinished += report.unfinished;
    wall += report.wall_s;
    fd_limit = report.fd_limit;
    max_open = std::max(max_open, report.max_open);
  }
  const auto summary = server.stop();
  const double iterations = static_cast<double>(state.iterations());
  const double per_iteration = double(c.clients) * options.requests;
  std::sort(latencies.begin(), latencies.end());
  const double server_cpu = number(summary, "cpu_s");
  state.counters["clients"] = c.clients;
  state.counters["connections"] = per_iteration;
  state.counters["sleep_ms"] = server_sleep_ms(model, c);  // the server's: the floor's is 0
  state.counters["ideal_s"] = fanout_ideal_seconds(model, c, connections);
  state.counters["requests_per_s"] = wall > 0 ? double(ok) / wall : 0;
  state.counters["p50_ms"] = fanout::percentile(latencies, 50);
  state.counters["p90_ms"] = fanout::percentile(latencies, 90);
  state.counters["p99_ms"] = fanout::percentile(latencies, 99);
  state.counters["max_ms"] = latencies.empty() ? 0 : latencies.back();
  state.counters["errors"] = double(errors);
  state.counters["unfinished"] = double(unfinished);
  state.counters["server_cpu_s"] = server_cpu / iterations;
  state.counters["server_user_s"] = number(summary, "cpu_user_s") / iterations;
  state.counters["server_sys_s"] = number(summary, "cpu_sys_s") / iterations;
  state.counters["server_cpu_ms_per_1000"] = server_cpu / (iterations * per_iteration) * 1e6;
  state.counters["server_rss_kb"] = number(summary, "maxrss_kb");
  state.counters["children_rss_kb"] = number(summary, "children_maxrss_kb");  // the largest child's peak, not a sum
  state.counters["served"] = number(summary, "served");
  state.counters["fd_limit"] = fd_limit;
  state.counters["max_open"] = max_open;
  auto per_worker = summary.find("per_worker");
  state.SetLabel("per_worker=" + (per_worker == summary.end() ? std::string("-") : per_worker->second));
}

}  // namespace

void register_fanout(const Options& options) {
  for (const FanoutModel& model : kFanoutModels) {
    for (const FanoutCase& c : options.fanout_cases) {
      if (fanout_ideal_seconds(model, c, options.fanout_connections) > options.max_ideal_s) continue;
      const auto name = fmt::format("fanout/{}/clients:{}/sleep_ms:{}", model.name, c.clients, c.sleep_ms);
      const int connections = options.fanout_connections;
      auto row = [&model, c, connections](benchmark::State& state) { fanout_row(state, model, c, connections); };
      auto* b = benchmark::RegisterBenchmark(name.c_str(), [row](benchmark::State& state) { guarded(state, [&] { row(state); }); });
      b->UseManualTime()->Unit(benchmark::kMillisecond);
      if (fanout_ideal_seconds(model, c, connections) >= kLongRowSeconds) b->Repetitions(options.long_repetitions);
    }
  }
}

}  // namespace conclab::bench
