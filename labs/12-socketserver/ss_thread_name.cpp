// ss_thread_name.cpp — the seed 001 ThreadedTCPRequestHandler (lab 12).
//
// The seed's whole program: a ThreadingTCPServer on any free port, its
// serve_forever() in a thread of its own, three clients one after another,
// each answered `{thread name}: {data}` by the thread that served it; then
// shutdown() and server_close(). Observe that every request names another
// thread (conclab: `Thread-2`; Python 3.11: `Thread-2 (process_request_thread)`).
// See also: ss_threading_tcp.cpp, python/ss_thread_name.py (the seed's program).
#include <fmt/core.h>

#include <atomic>
#include <chrono>
#include <string>

#include "conclab/cli.hpp"
#include "conclab/socketserver.hpp"
#include "conclab/threading.hpp"

std::atomic<int> served{0};

struct ThreadedTCPRequestHandler : conclab::BaseRequestHandler {
  using BaseRequestHandler::BaseRequestHandler;
  void handle() override {
    ++served;
    const std::string data = request.recv(1024);
    const std::string cur_thread = conclab::current_thread_name();  // threading.current_thread().name
    request.send_all(fmt::format("{}: {}", cur_thread, data));
  }
};

void client(const std::string& ip, std::uint16_t port, const std::string& message) {
  auto sock = conclab::create_connection(ip, port, std::chrono::seconds(10));
  sock.send_all(message);
  fmt::print("Received: {}\n", sock.recv(1024));
}  // sock.close()

int main(int argc, char** argv) {
  CLI::App app{"Lab 12: the seed's threaded server answering {thread name}: {data} to three clients."};
  conclab::NetFlags net{.host = "127.0.0.1", .port = 0};  // port 0: any free port, as the seed
  conclab::add_net_flags(app, net, "listen on");

  return conclab::run_main(app, argc, argv, [&] {
    conclab::ThreadingTCPServer<ThreadedTCPRequestHandler> server(net.host, static_cast<std::uint16_t>(net.port));
    const std::string ip = server.server_address().host();
    const std::uint16_t port = server.server_address().port();
    fmt::print("listening on {}\n", server.server_address());

    // A thread for the server loop; it starts one more thread per request.
    conclab::Thread server_thread([&] { server.serve_forever(); });
    server_thread.start();
    fmt::print("Server loop running in thread: {}\n", server_thread.name());

    client(ip, port, "Hello World 1");
    client(ip, port, "Hello World 2");
    client(ip, port, "Hello World 3");

    server.shutdown();
    server_thread.join();
    server.server_close();
    fmt::print("model=thread-name clients=3 served={}\n", served.load());
  });
}
