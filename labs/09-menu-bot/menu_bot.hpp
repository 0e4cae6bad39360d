// menu_bot.hpp — the seed's "10086" menu bot conversation (lab 09), shared by
// menu_bot_iterative.cpp and menu_bot_threaded.cpp, so that the two differ
// only in how they serve callers (one after the other, or a thread each).
//
// The seed's protocol has no framing: each recv() is taken as one message
// ("0", "exit", anything else), exactly as the seed does; the README says
// what that costs ("sticky packets"). What the seed does not do and this
// does: a caller that hangs up without "exit", resets, or stays silent for
// --idle-timeout seconds ends its call (the seed answers an empty recv()
// with "请重新输入." for ever, and waits for a silent caller for ever).
// See also: python/menu_bot_server.py (the seed's server), menu_bot_client.cpp.
#pragma once

#include <fmt/core.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <string>
#include <string_view>

#include "conclab/socket.hpp"

namespace menu_bot {

inline constexpr std::string_view kGreeting = "欢迎致电 10086,请输入1xxx,0转人工服务.";
inline constexpr std::string_view kOperator = "通过可能会被录音.balabala一大推";
inline constexpr std::string_view kTryAgain = "请重新输入.";

inline void add_idle_flag(CLI::App& app, double& idle_timeout_s) {
  app.add_option("--idle-timeout", idle_timeout_s, "seconds a caller may stay silent before the bot hangs up")
      ->check(CLI::Range(0.001, 86400.0))
      ->capture_default_str();
}

// One call: the greeting, then an answer to each recv() until "exit".
// Lets conclab::Interrupted through (the server stops).
inline void process(conclab::Socket& conn, const conclab::Address& peer, double idle_timeout_s) {
  conn.settimeout(std::chrono::duration<double>(idle_timeout_s));
  try {
    conn.send_all(kGreeting);
    for (;;) {
      const std::string data = conn.recv(1024);
      if (data == "exit") return;
      if (data.empty()) {
        fmt::print("{} hung up without saying exit\n", peer);
        return;
      }
      conn.send_all(data == "0" ? kOperator : kTryAgain);
    }
  } catch (const conclab::TimeoutError&) {
    fmt::print("{} silent for {:g} s: hung up\n", peer, idle_timeout_s);
  } catch (const conclab::SocketError& e) {
    fmt::print("{} lost: {}\n", peer, e.code().message());
  }
}

}  // namespace menu_bot
