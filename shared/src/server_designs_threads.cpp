// The server designs with threads (server_designs.hpp): thread-per-client,
// prethread-mutex, prethread-main-accept, and conclab's socketserver
// servers (ThreadingTCPServer, ForkingTCPServer) with a handler speaking
// the fan-out protocol. A stop signal wakes every thread blocked in a
// socket call (signals.hpp): each ends, and is joined.
#include <fcntl.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <map>
#include <mutex>

#include <fmt/format.h>

#include "conclab/selectors.hpp"
#include "conclab/shm.hpp"
#include "conclab/signals.hpp"
#include "conclab/socketserver.hpp"
#include "conclab/threading.hpp"
#include "server_designs_common.hpp"

namespace conclab::fanout::detail {

namespace {

unique_fd make_eventfd() { return unique_fd(check(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK), "eventfd")); }

void signal_eventfd(int fd) noexcept {
  const std::uint64_t one = 1;
  [[maybe_unused]] auto n = ::write(fd, &one, sizeof one);
}

void drain_eventfd(int fd) noexcept {
  std::uint64_t value = 0;
  [[maybe_unused]] auto n = ::read(fd, &value, sizeof value);
}

}  // namespace

// ---------------------------------------------------------------- thread-per-client

// Two threads of the server's own besides one per connection: an acceptor
// that only accepts (so the kernel's accept queue empties as fast as
// accept() goes, and a burst of 10,000 connects is not dropped and retried a
// second later), and the main thread, which starts a thread for each
// connection the acceptor hands it and joins those that end.
Counts serve_thread_per_client(Socket& listener, const ServerOptions& options) {
  std::atomic<long long> served{0}, refused{0};
  std::mutex mutex;
  std::deque<Socket> accepted;          // from the acceptor, to be given a thread each
  std::vector<std::uint64_t> finished;  // ended, to be joined by the main thread
  const unique_fd arrived = make_eventfd();  // the acceptor has queued connections
  const unique_fd ended = make_eventfd();    // a connection's thread has ended
  std::exception_ptr acceptor_error;
  // Every descriptor the server needs is made before the first accept: out
  // of descriptors later, only accepting waits.
  Selector<int> accept_selector(Backend::epoll);
  LoopListener<int> loop_listener(listener, accept_selector, 0);
  Selector<int> selector(Backend::epoll);
  enum { kArrived, kEnded };
  selector.register_fd(arrived.get(), EVENT_READ, kArrived);
  selector.register_fd(ended.get(), EVENT_READ, kEnded);
  Thread acceptor([&] {
    try {
      for (;;) {
        if (accept_selector.select().empty()) continue;  // a timer (the EMFILE back-off) ran
        std::vector<Socket> batch;
        while (auto conn = loop_listener.accept()) batch.push_back(std::move(*conn));
        if (batch.empty()) continue;
        {
          std::lock_guard lock(mutex);
          for (auto& conn : batch) accepted.push_back(std::move(conn));
        }
        signal_eventfd(arrived.get());
      }
    } catch (const Interrupted&) {
    } catch (...) {  // a failed system call: the main thread throws it
      std::lock_guard lock(mutex);
      acceptor_error = std::current_exception();
      signal_eventfd(arrived.get());
    }
  });
  acceptor.set_name("acceptor");
  acceptor.start();

  std::map<std::uint64_t, Thread> threads;
  std::uint64_t next_id = 0;
  bool said_thread = false;
  const auto join_finished = [&] {
    std::vector<std::uint64_t> done;
    {
      std::lock_guard lock(mutex);
      done.swap(finished);
    }
    for (auto id : done) {
      threads.at(id).join();
      threads.erase(id);
    }
  };
  const auto start_thread = [&](Socket conn) {
    const std::uint64_t id = next_id++;
    Thread thread(
        [&, id](Socket conn) {
          try {
            ++(serve_connection(conn, options) ? served : refused);
          } catch (const Interrupted&) {
            ++refused;
          }
          conn.close();
          {
            std::lock_guard lock(mutex);
            finished.push_back(id);
          }
          signal_eventfd(ended.get());
        },
        std::move(conn));
    try {
      thread.start();
    } catch (const ThreadStartError& e) {
      // Out of threads: this connection is refused (closed), the server goes on.
      if (!said_thread) fmt::print(stderr, "fanout-server: {}\n", e.what());
      said_thread = true;
      ++refused;
      return;
    }
    said_thread = false;
    threads.emplace(id, std::move(thread));
  };
  try {
    for (;;) {
      for (const auto& ready : selector.select()) {
        if (ready.key.data == kEnded) {
          drain_eventfd(ended.get());
          join_finished();
          continue;
        }
        drain_eventfd(arrived.get());
        std::deque<Socket> batch;
        {
          std::lock_guard lock(mutex);
          if (acceptor_error) std::rethrow_exception(acceptor_error);
          batch.swap(accepted);
        }
        for (auto& conn : batch) start_thread(std::move(conn));
      }
    }
  } catch (const Interrupted&) {
  }
  acceptor.join();  // it ends on the stop signal too
  refused += static_cast<long long>(accepted.size());  // accepted, never given a thread: closed
  accepted.clear();
  for (auto& [id, thread] : threads) thread.join();  // each ends on the stop signal
  Counts counts;
  counts.served = served;
  counts.refused = refused;
  return counts;
}

// ---------------------------------------------------------------- prethread-mutex

Counts serve_prethread_mutex(Socket& listener, const ServerOptions& options) {
  const int n = options.workers;
  RLock lock;  // around accept(): one thread waits in it, the others on the lock
  std::vector<long long> served(static_cast<std::size_t>(n)), refused(static_cast<std::size_t>(n));
  run_threads(n, "worker", [&](int slot) {
    for (;;) {
      Socket conn;
      {
        std::lock_guard held(lock);
        conn = std::move(listener.accept().conn);  // a stop signal: Interrupted, and the lock is released
      }
      bump(serve_connection(conn, options) ? served[static_cast<std::size_t>(slot)]
                                           : refused[static_cast<std::size_t>(slot)]);
    }
  });
  return pool_counts(n, served, refused);
}

// ---------------------------------------------------------------- prethread-main-accept

Counts serve_prethread_main_accept(Socket& listener, const ServerOptions& options) {
  const int n = options.workers;
  // The book's clifd[] array, bounded: when it is full the main thread stops
  // accepting (the connections wait in the kernel's backlog) until a worker
  // takes one, where the book's server aborts.
  const std::size_t capacity = static_cast<std::size_t>(n);
  std::mutex mutex;
  std::condition_variable work;
  std::deque<Socket> queue;
  bool closing = false;
  const unique_fd slot_freed = make_eventfd();
  std::vector<long long> served(static_cast<std::size_t>(n)), refused(static_cast<std::size_t>(n));
  long long dropped = 0;

  std::vector<Thread> threads;
  threads.reserve(capacity);
  for (int slot = 0; slot < n; ++slot) {
    threads.emplace_back([&, slot] {
      try {
        for (;;) {
          Socket conn;
          {
            std::unique_lock lock(mutex);
            work.wait(lock, [&] { return closing || !queue.empty(); });
            if (closing) return;
            const bool was_full = queue.size() >= capacity;
            conn = std::move(queue.front());
            queue.pop_front();
            if (was_full) signal_eventfd(slot_freed.get());
          }
          bump(serve_connection(conn, options) ? served[static_cast<std::size_t>(slot)]
                                               : refused[static_cast<std::size_t>(slot)]);
        }
      } catch (const Interrupted&) {
      }
    });
    try {
      threads.back().start();
    } catch (...) {
      threads.pop_back();
      {
        std::lock_guard lock(mutex);
        closing = true;
      }
      work.notify_all();
      throw;
    }
  }

  Selector<int> selector(Backend::epoll);
  enum { kListener, kSlotFreed };
  selector.register_fd(slot_freed.get(), EVENT_READ, kSlotFreed);
  // Accept only while the queue has room (back-pressure).
  LoopListener<int> acceptor(listener, selector, kListener, [&] {
    std::lock_guard lock(mutex);
    return queue.size() < capacity;
  });
  try {
    for (;;) {
      for (const auto& ready : selector.select()) {
        if (ready.key.data == kSlotFreed) {
          drain_eventfd(slot_freed.get());
        } else if (auto conn = acceptor.accept()) {
          {
            std::lock_guard lock(mutex);
            queue.push_back(std::move(*conn));
          }
          work.notify_one();
        }
        acceptor.update();
      }
    }
  } catch (const Interrupted&) {
  }
  {
    std::lock_guard lock(mutex);
    closing = true;
    dropped = static_cast<long long>(queue.size());  // accepted, never served
    queue.clear();
  }
  work.notify_all();
  for (auto& t : threads) t.join();
  Counts counts = pool_counts(n, served, refused);
  counts.refused += dropped;
  return counts;
}

// ---------------------------------------------------------------- socketserver

namespace {

// What the handler needs from its server: the options and the counters
// (in shared memory, so that a ForkingTCPServer's children count too).
struct Tally {
  const ServerOptions* options;
  long long* served;
  long long* refused;
};

struct FanoutHandler : BaseRequestHandler {
  using BaseRequestHandler::BaseRequestHandler;
  void handle() override {
    auto& tally = dynamic_cast<Tally&>(server);
    bump(serve_connection(request, *tally.options) ? *tally.served : *tally.refused);
  }
};

// TCPServer<FanoutHandler, MixIn> on a listener of the caller's (a
// duplicate of its descriptor, which server_close() closes).
template <class MixIn>
class FanoutServer : public MixIn, public Tally {
 public:
  FanoutServer(Socket& listener, const ServerOptions& options, long long* counters)
      : MixIn(Socket(unique_fd(check(::fcntl(listener.fileno(), F_DUPFD_CLOEXEC, 0), "fcntl(F_DUPFD_CLOEXEC)"))),
              conclab::detail::runner_for<FanoutHandler>()),
        Tally{&options, counters, counters + 1} {}
  ~FanoutServer() override {
    this->server_close();
    this->end_workers();
  }
};

template <class MixIn>
Counts serve_socketserver(Socket& listener, const ServerOptions& options) {
  SharedArray<long long> counters(2, 0);
  {
    FanoutServer<MixIn> server(listener, options, counters.begin());
    try {
      server.serve_forever();
    } catch (const Interrupted&) {
    }
    server.server_close();  // waits for the threads / children (told of the stop)
  }
  Counts counts;
  counts.served = counters[0];
  counts.refused = counters[1];
  return counts;
}

}  // namespace

Counts serve_socketserver_threading(Socket& listener, const ServerOptions& options) {
  return serve_socketserver<ThreadingMixIn>(listener, options);
}

Counts serve_socketserver_forking(Socket& listener, const ServerOptions& options) {
  return serve_socketserver<ForkingMixIn>(listener, options);
}

}  // namespace conclab::fanout::detail
