// conclab-bench — every concurrency model on the same workloads (Google Benchmark).
//
//   conclab-bench                                   the default profile
//   conclab-bench --cases 5x1000,100x100            chosen tasks x sleep_ms cases
//   conclab-bench --benchmark_filter=threaded --benchmark_out=run.json
//   conclab-bench --repetitions 1                   one measurement per row (quick, no spread)
//
// Every row runs --repetitions times (5), or --long-repetitions times (4)
// when it takes a second or more: the JSON has each repetition (and Google
// Benchmark's mean/median/stddev/cv), scripts/report shows median and spread.
//
// conclab's own flags come first in --help; every --benchmark_* flag of
// Google Benchmark passes through.
#include <fmt/core.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <optional>
#include <string_view>
#include <string>
#include <vector>

#include "bench.hpp"
#include "conclab/cli.hpp"
#include "conclab/clock.hpp"

namespace {

using conclab::bench::Case;
using conclab::bench::FanoutCase;

// "NxT" -> Case{N, T}, "Nxcpu" -> Case{N, 0}, within the limits of the lab flags.
std::optional<Case> parse_case(const std::string& text) {
  Case c{};
  const char* p = text.data();
  const char* end = p + text.size();
  auto [x, e1] = std::from_chars(p, end, c.tasks);
  if (e1 != std::errc() || x == end || *x != 'x') return std::nullopt;
  if (std::string_view(x + 1, end) == "cpu")
    return c.tasks >= 1 && c.tasks <= conclab::kMaxTasks ? std::optional(c) : std::nullopt;
  auto [q, e2] = std::from_chars(x + 1, end, c.sleep_ms);
  if (e2 != std::errc() || q != end) return std::nullopt;
  if (c.tasks < 1 || c.tasks > conclab::kMaxTasks || c.sleep_ms < 1 || c.sleep_ms > conclab::kMaxSleepMs)
    return std::nullopt;
  return c;
}

// --max-ideal-s: a positive, finite number of seconds, said in one short
// sentence (CLI::PositiveNumber prints the whole 309-digit DBL_MAX).
std::string check_seconds(std::string& text) {
  double value = 0;
  auto [end, err] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (err == std::errc::invalid_argument || end != text.data() + text.size() || std::isnan(value))
    return "'" + text + "' is not a number of seconds";
  if (err != std::errc() || std::isinf(value)) return text + " is out of range";
  if (value <= 0) return text + " is not a positive number of seconds";
  return {};
}

// "CxT" -> FanoutCase{C, T}: C clients at once, the server holding each request T ms.
std::optional<FanoutCase> parse_fanout_case(const std::string& text) {
  FanoutCase c{};
  const char* p = text.data();
  const char* end = p + text.size();
  auto [x, e1] = std::from_chars(p, end, c.clients);
  if (e1 != std::errc() || x == end || *x != 'x') return std::nullopt;
  auto [q, e2] = std::from_chars(x + 1, end, c.sleep_ms);
  if (e2 != std::errc() || q != end || c.clients < 1 || c.clients > 15'000 || c.sleep_ms < 0 || c.sleep_ms > 60'000)
    return std::nullopt;
  return c;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"conclab-bench: the concurrency models of conclab on the same workloads.\n"
               "Google Benchmark's --benchmark_* flags (filter, out, out_format, min_time, ...) pass through."};
  // The default profile (as scripts/bench): the seed's 5 x 1 s, 1..1000 tasks at 100 ms,
  // 1000 x 10 ms for the pools, and CPU-bound tasks.
  std::vector<std::string> cases{"5x1000", "1x100", "10x100", "100x100", "1000x100", "1000x10", "1xcpu", "2xcpu", "8xcpu"};
  // Fan-out: the book's table (5 clients, sleep 0), the CPython twins at 100
  // clients, a service time of 10 ms at 1,000 clients (the pools at C = 1,000)
  // and of 100 ms at 100 and 1,000, and C10K (10,000 clients held 1 s each).
  // The floor runs at every case, with no service time (bench/fanout.cpp).
  std::vector<std::string> fanout_cases{"5x0", "100x0", "1000x10", "100x100", "1000x100", "10000x1000"};
  conclab::bench::Options options{
      .cases = {}, .fanout_cases = {}, .fanout_connections = 2000, .max_ideal_s = 5, .long_repetitions = 4};
  int repetitions = 5;
  std::vector<std::string> context;
  app.add_option("--cases", cases, "worker cases as TASKSxSLEEP_MS or TASKSxcpu, comma-separated")
      ->delimiter(',')
      ->check(CLI::Validator(
          [](std::string& s) { return parse_case(s) ? std::string() : "'" + s + "' is not TASKSxSLEEP_MS or TASKSxcpu"; },
          "CASES"))
      ->capture_default_str();
  app.add_option("--fanout-cases", fanout_cases, "fan-out cases as CLIENTSxSLEEP_MS, comma-separated")
      ->delimiter(',')
      ->check(CLI::Validator(
          [](std::string& s) {
            return parse_fanout_case(s) ? std::string() : "'" + s + "' is not CLIENTSxSLEEP_MS (1-15000 x 0-60000)";
          },
          "CASES"))
      ->capture_default_str();
  app.add_option("--fanout-connections", options.fanout_connections,
                 "connections of a sleep-free fan-out case in all (each client does this / C)")
      ->check(CLI::Range(1, 1'000'000))
      ->capture_default_str();
  app.add_option("--max-ideal-s", options.max_ideal_s, "leave out rows whose ideal time exceeds this (seconds)")
      ->check(CLI::Validator(check_seconds, "SECONDS > 0"))
      ->capture_default_str();
  app.add_option("--repetitions", repetitions, "measure each row this many times (median and spread)")
      ->check(CLI::Range(1, 100))
      ->capture_default_str();
  app.add_option("--long-repetitions", options.long_repetitions,
                 "... but rows of a second or more this many times (worker rows)")
      ->check(CLI::Range(1, 100))
      ->capture_default_str();
  app.add_option("--context", context, "KEY=VALUE added to the JSON context (repeatable)");
  app.allow_extras();

  if (auto code = conclab::parse_args(app, argc, argv)) return *code;

  return conclab::run_main([&] {
    for (const auto& text : cases) options.cases.push_back(*parse_case(text));
    for (const auto& text : fanout_cases) options.fanout_cases.push_back(*parse_fanout_case(text));
    for (const auto& kv : context) {
      auto eq = kv.find('=');
      if (eq == std::string::npos) {
        fmt::print(stderr, "conclab-bench: --context: '{}' is not KEY=VALUE (see --help)\n", kv);
        return conclab::kExitUsage;
      }
      benchmark::AddCustomContext(kv.substr(0, eq), kv.substr(eq + 1));
    }
    benchmark::AddCustomContext("compiler", "g++ " __VERSION__);
    // The spin window of every row but the spin:off ones (clock.hpp): how to read their cpu_s.
    benchmark::AddCustomContext("spin_window_us", std::to_string(conclab::spin_window().count()));

    // The steps of one work:cpu task (CPython's peer takes fewer for the same time).
    benchmark::AddCustomContext("cpu_steps", std::to_string(conclab::bench::kCpuIterations));

    // Hand Google Benchmark the flags conclab did not take, and the
    // repetitions (unless given as --benchmark_repetitions): the console then
    // shows each row's aggregates, the JSON every repetition too.
    std::vector<std::string> rest = app.remaining();
    auto given = [&](std::string_view flag) {
      return std::any_of(rest.begin(), rest.end(), [&](const std::string& a) { return a.starts_with(flag); });
    };
    if (!given("--benchmark_repetitions")) rest.push_back(fmt::format("--benchmark_repetitions={}", repetitions));
    if (!given("--benchmark_display_aggregates_only")) rest.emplace_back("--benchmark_display_aggregates_only=true");
    std::vector<char*> gb_argv{argv[0]};
    for (auto& arg : rest) gb_argv.push_back(arg.data());
    int gb_argc = static_cast<int>(gb_argv.size());
    benchmark::Initialize(&gb_argc, gb_argv.data());
    if (benchmark::ReportUnrecognizedArguments(gb_argc, gb_argv.data())) return conclab::kExitUsage;

    // The microbenchmarks first, while the process is small: fork() copies
    // the page tables, so forking gets slower as the process grows.
    conclab::bench::register_micro();
    conclab::bench::register_workers(options);
    conclab::bench::register_fanout(options);
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    // Every row is in the JSON, the failed ones with their error_message;
    // the exit status still says that the run was not whole.
    if (int failed = conclab::bench::failed_rows.load()) {
      fmt::print(stderr,
                 "conclab-bench: {} measurement{} failed (each repetition of a row is one; see ERROR OCCURRED "
                 "above, error_message in the JSON)\n",
                 failed, failed == 1 ? "" : "s");
      return conclab::kExitFailure;
    }
    return conclab::kExitOk;
  });
}
