// What the server models of server_designs*.cpp share (not a public header).
#pragma once

#include <sys/types.h>

#include <atomic>
#include <functional>
#include <optional>
#include <string>

#include "conclab/selectors.hpp"
#include "conclab/server_designs.hpp"

namespace conclab::fanout::detail {

// What a model returns; serve() adds the name and the CPU.
struct Counts {
  int workers = 0;
  long long served = 0;
  long long refused = 0;
  std::vector<long long> per_worker;
};

// The models, one function each (server_designs_*.cpp).
Counts serve_iterative(Socket& listener, const ServerOptions& options);
Counts serve_floor(Socket& listener, const ServerOptions& options);
Counts serve_fork_per_client(Socket& listener, const ServerOptions& options);
enum class AcceptLock { none, fcntl, mutex };
Counts serve_prefork(Socket& listener, const ServerOptions& options, AcceptLock lock);
Counts serve_prefork_fdpass(Socket& listener, const ServerOptions& options);
Counts serve_thread_per_client(Socket& listener, const ServerOptions& options);
Counts serve_prethread_mutex(Socket& listener, const ServerOptions& options);
Counts serve_prethread_main_accept(Socket& listener, const ServerOptions& options);
Counts serve_event_loop(Socket& listener, const ServerOptions& options, Backend backend);
Counts serve_epoll_threads(Socket& listener, const ServerOptions& options);
Counts serve_socketserver_threading(Socket& listener, const ServerOptions& options);
Counts serve_socketserver_forking(Socket& listener, const ServerOptions& options);

// A pidfd for `pid` (readable when it ends); throws on failure.
int open_pidfd(pid_t pid);

// Says once per run of EMFILE (or the like) that the server stops accepting
// for kAcceptBackoff; `said` remembers it.
inline constexpr std::chrono::milliseconds kAcceptBackoff{50};
void say_out_of_resources(int err, bool& said);

// How many CPUs this process may run on.
int usable_cpus();

// The listener of a loop on a Selector: watched while `room()` says the
// server may take another connection and it is not backing off after
// EMFILE (then kAcceptBackoff, said once). Call update() when room() may
// have changed.
template <class Data>
class LoopListener {
 public:
  LoopListener(Socket& listener, Selector<Data>& selector, Data data, std::function<bool()> room = {})
      : listener_(listener), selector_(selector), data_(std::move(data)), room_(std::move(room)) {
    update();
  }
  void update() {
    const bool want = !backing_off_ && (!room_ || room_());
    if (want && !registered_) selector_.register_fd(listener_.fileno(), EVENT_READ, data_);
    if (!want && registered_) selector_.unregister(listener_.fileno());
    registered_ = want;
  }
  // The next connection, or nullopt: none waiting (another worker took
  // it), not watched at the moment, or out of descriptors (backing off).
  std::optional<Socket> accept() {
    if (!registered_) return std::nullopt;  // unwatched after this turn's list was made
    int err = 0;
    auto accepted = listener_.try_accept(&err);
    if (accepted) {
      said_ = false;
      return std::move(accepted->conn);
    }
    if (err) {
      say_out_of_resources(err, said_);
      backing_off_ = true;
      update();
      selector_.call_later(kAcceptBackoff, [this] {
        backing_off_ = false;
        update();
      });
    }
    return std::nullopt;
  }

 private:
  Socket& listener_;
  Selector<Data>& selector_;
  Data data_;
  std::function<bool()> room_;
  bool registered_ = false;
  bool backing_off_ = false;
  bool said_ = false;
};

// Runs body(slot) in `n` threads until each ends (a stop signal:
// Interrupted, which ends a thread quietly), then joins them. A thread that
// cannot start stops those already running the way Ctrl-C would, and the
// error goes on.
void run_threads(int n, const char* name, const std::function<void(int)>& body);

// A pool's counts from its workers' counters.
Counts pool_counts(int n, const std::vector<long long>& served, const std::vector<long long>& refused);

// Adds one to a counter that another process or thread reads later.
inline void bump(long long& counter) { std::atomic_ref(counter).fetch_add(1, std::memory_order_relaxed); }

}  // namespace conclab::fanout::detail
