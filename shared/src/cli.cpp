#include "conclab/cli.hpp"

#include <fmt/core.h>

#include <charconv>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <iterator>
#include <optional>
#include <string>

#include "conclab/error.hpp"
#include "conclab/selectors.hpp"

namespace conclab {

CLI::Validator int_in_range(int low, int high) {
  return CLI::Validator(
      [low, high](std::string& text) -> std::string {
        int value = 0;
        auto [end, err] = std::from_chars(text.data(), text.data() + text.size(), value);
        if (err == std::errc::result_out_of_range || (err == std::errc() && end == text.data() + text.size() &&
                                                     (value < low || value > high)))
          return fmt::format("{} is not in [{}, {}]", text, low, high);
        if (err != std::errc() || end != text.data() + text.size())
          return fmt::format("'{}' is not an integer", text);
        return {};
      },
      fmt::format("[{}, {}]", low, high));
}

void add_worker_flags(CLI::App& app, WorkerFlags& flags, int max_tasks, const std::string& why) {
  std::string help = "number of workers";
  if (max_tasks < kMaxTasks && !why.empty()) help += fmt::format(" (at most {} here: {})", max_tasks, why);
  app.add_option("--tasks", flags.tasks, help)->check(int_in_range(1, max_tasks))->capture_default_str();
  app.add_option("--sleep-ms", flags.sleep_ms, "how long each worker sleeps, in milliseconds")
      ->check(int_in_range(1, kMaxSleepMs))
      ->capture_default_str();
}

void add_counter_flags(CLI::App& app, CounterFlags& flags) {
  app.add_option("--threads", flags.threads, "number of threads")
      ->check(int_in_range(1, kMaxThreads))
      ->capture_default_str();
  app.add_option("--increments", flags.increments, "increments per thread")
      ->check(int_in_range(1, kMaxIncrements))
      ->capture_default_str();
}

void add_net_flags(CLI::App& app, NetFlags& flags, const std::string& role) {
  app.add_option("--host", flags.host, fmt::format("host name or address to {}", role))->capture_default_str();
  const bool listens = role == "listen on";  // port 0 picks a free port; there is none to connect to
  app.add_option("--port", flags.port, fmt::format("port to {}", role) + (listens ? " (0: any free port)" : ""))
      ->check(int_in_range(listens ? 0 : 1, 65535))
      ->capture_default_str();
}

void add_selector_flag(CLI::App& app, Backend& backend, std::vector<Backend> allowed) {
  if (allowed.empty()) allowed.assign(std::begin(kBackends), std::end(kBackends));
  std::string names;
  for (Backend b : allowed) names += (names.empty() ? "" : ", ") + std::string(backend_name(b));
  // The back end called `name`, if this program allows it.
  auto pick = [allowed](const std::string& name) -> std::optional<Backend> {
    for (Backend b : allowed)
      if (name == backend_name(b)) return b;
    return std::nullopt;
  };
  app.add_option_function<std::string>(
         "--selector", [&backend, pick](const std::string& name) { backend = *pick(name); },
         fmt::format("how the loop waits: {}", names))
      ->check([pick, names](const std::string& name) {
        return pick(name) ? std::string() : fmt::format("unknown selector '{}' (choose {})", name, names);
      })
      ->default_str(std::string(backend_name(backend)));
}

std::optional<int> parse_args(CLI::App& app, int argc, char** argv) {
  std::string program = argc > 0 ? std::filesystem::path(argv[0]).filename().string() : "conclab";
  try {
    app.parse(argc, argv);
    return std::nullopt;
  } catch (const CLI::Success& done) {
    // --help (or another informational flag): CLI11 prints it on stdout.
    return app.exit(done);
  } catch (const CLI::ParseError& bad) {
    fmt::print(stderr, "{}: {} (see --help)\n", program, bad.what());
    return kExitUsage;
  }
}

void line_buffered_stdout() noexcept {
  // Before anything is written; CLI11's --help goes through std::cout, which
  // is synchronised with stdio and so follows this buffering too.
  std::setvbuf(stdout, nullptr, _IOLBF, BUFSIZ);
}

void ignore_sigpipe() noexcept { std::signal(SIGPIPE, SIG_IGN); }

int report_exception(std::exception_ptr error) noexcept {
  std::fprintf(stderr, "error: %s\n", describe(error).c_str());
  std::fflush(stdout);
  return kExitFailure;
}

}  // namespace conclab
