// two_listeners.cpp — the seed 003 server with two listeners: select() over both, a thread per connection (lab 11).
//
// One select() waits on two listening sockets (ports 8020 and 8021, as the
// seed); whichever is readable is accepted and its connection handed to a
// conclab::Thread that echoes until the client closes. This is how Python's
// socketserver works inside (select + threads). Finished threads are joined
// at each accept, so they do not pile up; SIGINT/SIGTERM wakes every thread.
// See also: python/two_listeners.py, select_echo.cpp (one thread, no blocking).
#include <fmt/core.h>

#include <atomic>
#include <list>
#include <chrono>
#include <string>
#include <thread>

#include "conclab/cli.hpp"
#include "conclab/selectors.hpp"
#include "conclab/signals.hpp"
#include "conclab/socket.hpp"
#include "conclab/threading.hpp"

// The thread of one connection: echo until the client closes.
void echo(conclab::Socket conn, conclab::Address peer, std::atomic<std::size_t>& bytes) {
  try {
    for (;;) {
      std::string data = conn.recv(1024);
      if (data.empty()) break;
      bytes += data.size();
      conn.send_all(data);
    }
  } catch (const conclab::SocketError& e) {
    fmt::print(stderr, "connection from {} ended: {}\n", peer, e.code().message());
  } catch (const conclab::Interrupted&) {  // stopping: the main thread joins us
  }
}

int main(int argc, char** argv) {
  CLI::App app{"Lab 11: two listeners in one select(), a thread per connection that echoes."};
  conclab::NetFlags net{.host = "127.0.0.1", .port = 8020};
  conclab::add_net_flags(app, net, "listen on");
  int port2 = 8021;
  app.add_option("--port2", port2, "the second port to listen on (0: any free port)")
      ->check(conclab::int_in_range(0, 65535))
      ->capture_default_str();

  return conclab::run_main(app, argc, argv, [&] {
    conclab::stop_on_signals();
    conclab::Socket listeners[] = {conclab::create_server(net.host, static_cast<std::uint16_t>(net.port)),
                                   conclab::create_server(net.host, static_cast<std::uint16_t>(port2))};
    conclab::Selector<conclab::Socket*> selector(conclab::Backend::select);
    for (auto& s : listeners) {
      fmt::print("listening on {}\n", s.address());
      selector.register_fd(s.fileno(), conclab::EVENT_READ, &s);
    }
    int served = 0;
    std::atomic<std::size_t> bytes = 0;
    std::list<conclab::Thread> threads;
    try {
      for (;;) {
        for (auto& [key, events] : selector.select()) {
          int out_of_descriptors = 0;  // accept() would block if the connection was reset meanwhile
          auto accepted = key.data->try_accept(&out_of_descriptors);
          if (!accepted) {
            if (out_of_descriptors) std::this_thread::sleep_for(std::chrono::milliseconds(50));  // let one close
            continue;
          }
          auto& [conn, peer] = *accepted;
          fmt::print("get request on {} from {}\n", key.data->address(), peer);
          ++served;
          std::erase_if(threads, [](conclab::Thread& t) { return !t.is_alive() && (t.join(), true); });
          threads.emplace_back(echo, std::move(conn), peer, std::ref(bytes));
          try {
            threads.back().start();
          } catch (const conclab::ThreadStartError& e) {  // no thread for it: drop this connection only
            fmt::print(stderr, "{}: {}\n", peer, e.what());
            threads.pop_back();
          }
        }
      }
    } catch (const conclab::Interrupted&) {
    }
    for (auto& t : threads) t.join();
    fmt::print("model=select+threads served={} bytes={}\n", served, bytes.load());
  });
}
