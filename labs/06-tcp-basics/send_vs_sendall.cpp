// send_vs_sendall.cpp — the seed's send() and sendall(), side by side (lab 06).
//
// One large buffer (--bytes, 64 MiB) goes to a slow reader (a thread reading
// 64 KiB per millisecond) over a loopback connection, three times: one send()
// writes what fits in the kernel's buffers right now and returns how much;
// a loop of send() calls gets everything across; send_all() is that loop.
// The sender has a timeout: without one, send() waits until all is written.
// See also: python/send_vs_sendall.py, echo_server.cpp (send_all, not send).
#include <fmt/core.h>
#include <sys/socket.h>

#include <chrono>
#include <functional>
#include <string>
#include <thread>

#include "conclab/cli.hpp"
#include "conclab/clock.hpp"
#include "conclab/socket.hpp"
#include "conclab/threading.hpp"

using namespace std::chrono_literals;

// The slow reader: everything until the sender closes, 64 KiB then a pause.
void slow_read(conclab::Socket& conn, std::size_t& total) {
  for (;;) {
    const std::string chunk = conn.recv(64 * 1024);
    if (chunk.empty()) return;
    total += chunk.size();
    std::this_thread::sleep_for(1ms);
  }
}

// A fresh loopback connection to `server`, a slow reader on the far end, and
// `send` sending on the near end. Returns what `send` says it sent and what the reader got.
std::pair<std::size_t, std::size_t> over_loopback(conclab::Socket& server,
                                                  const std::function<std::size_t(conclab::Socket&)>& send) {
  auto client = conclab::create_connection("127.0.0.1", server.address().port(), 30s);
  auto [conn, peer] = server.accept();
  std::size_t got = 0;
  conclab::Thread reader(slow_read, std::ref(conn), std::ref(got));
  reader.start();
  std::size_t sent = 0;
  try {
    sent = send(client);
  } catch (...) {
    client.close();  // the reader sees the end and returns
    reader.join();
    throw;
  }
  client.close();
  reader.join();
  return {sent, got};
}

int main(int argc, char** argv) {
  CLI::App app{"Lab 06: one send() against send_all() of a large buffer to a slow reader."};
  int bytes = 64 << 20;
  app.add_option("--bytes", bytes, "how many bytes to send")->check(conclab::int_in_range(1, 1 << 30))->capture_default_str();

  return conclab::run_main(app, argc, argv, [&] {
    conclab::Stopwatch stopwatch;
    const std::string buffer(static_cast<std::size_t>(bytes), 'x');
    auto server = conclab::create_server("127.0.0.1", 0);

    auto [once, got_once] = over_loopback(server, [&](conclab::Socket& s) { return s.send(buffer); });
    fmt::print("send: the kernel took {} of {} bytes; the reader got {}\n", once, bytes, got_once);

    int calls = 0;
    auto [looped, got_looped] = over_loopback(server, [&](conclab::Socket& s) {
      std::size_t sent = 0;
      for (; sent < buffer.size(); ++calls) sent += s.send(std::string_view(buffer).substr(sent));
      return sent;
    });
    fmt::print("send loop: {} calls took {} of {} bytes; the reader got {}\n", calls, looped, bytes, got_looped);

    auto [all, got_all] = over_loopback(server, [&](conclab::Socket& s) {
      s.send_all(buffer);
      return buffer.size();
    });
    fmt::print("send_all: took {} of {} bytes; the reader got {}\n", all, bytes, got_all);

    fmt::print("model=send-vs-sendall bytes={} send={} send_calls={} send_all={} elapsed_s={:.3f}\n", bytes, once,
               calls, all, stopwatch.seconds());
  });
}
