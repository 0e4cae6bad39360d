// The server designs with processes (server_designs.hpp): fork-per-client,
// prefork-accept, prefork-flock, prefork-mutex, prefork-fdpass. The parent
// of each stays single-threaded, so that it may fork at any time (a pool
// child that dies is replaced), and waits on the children's pidfds in one
// epoll loop: each child is reaped as it ends, never a zombie pile.
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <mutex>
#include <optional>
#include <unordered_map>

#include <fmt/format.h>

#include "conclab/fdpass.hpp"
#include "conclab/process.hpp"
#include "conclab/selectors.hpp"
#include "conclab/shm.hpp"
#include "conclab/signals.hpp"
#include "server_designs_common.hpp"

namespace conclab::fanout::detail {

namespace {

// At most this many fork-per-client children at once (pid_max is 32,768 and
// shared): beyond it, the parent stops accepting until one ends.
constexpr std::size_t kMaxChildren = 2000;

// A slot of a pool: the child serving it now and its pidfd (readable when it ends).
struct Child {
  std::optional<Process> process;
  unique_fd pidfd;
};

// after_fork runs in the parent between the fork and pidfd_open(): it closes
// the parent's copies of what the child now holds, so that the pidfd can
// take one of their numbers even when the parent has no other descriptor left
// (an accept() that took the last one must not make the server fail).
void start_child(Child& child, std::function<int()> target, std::vector<int> keep, const std::string& name,
                 const std::function<void()>& after_fork = {}) {
  child.process.emplace(std::move(target));
  child.process->set_name(name).set_pass_fds(std::move(keep));
  child.process->start();
  if (after_fork) after_fork();
  child.pidfd.reset(open_pidfd(*child.process->pid()));
}

// Ends every child: SIGTERM, again every 100 ms until it has ended (a signal
// that lands between a child's look at the stop flag and its blocking
// accept() interrupts nothing; the next one does), and reaps it.
template <class Children, class Get>
void end_children(Children& children, Get get) {
  for (auto& c : children)
    if (Process* p = get(c)) p->terminate();
  for (auto& c : children)
    if (Process* p = get(c))
      while (!p->join(std::chrono::milliseconds(100))) p->terminate();
}

void say_replaced(int slot, const Process& process) {
  fmt::print(stderr, "fanout-server: worker {} (pid {}) ended: {}; replaced\n", slot, process.pid().value_or(-1),
             Process::describe_status(process.exitcode().value_or(0)));
}

// accept() on a blocking listener in a pool child: the kernel wakes one of
// the children blocked there per connection. Out of descriptors: back off.
Socket accept_blocking(Socket& listener) {
  bool said = false;
  for (;;) {
    throw_if_stopped();
    int err = 0;
    if (auto accepted = listener.try_accept(&err)) return std::move(accepted->conn);
    if (err) {
      say_out_of_resources(err, said);
      pause(kAcceptBackoff);
    }
  }
}

// fcntl()'s record lock on the whole file, held by this process while it lives.
class FileLock {
 public:
  explicit FileLock(int fd) : fd_(fd) { set(F_WRLCK, F_SETLKW); }
  ~FileLock() {
    try {
      set(F_UNLCK, F_SETLK);
    } catch (...) {
    }
  }
  FileLock(const FileLock&) = delete;
  FileLock& operator=(const FileLock&) = delete;

 private:
  void set(short type, int command) {
    struct flock lock {};
    lock.l_type = type;
    lock.l_whence = SEEK_SET;
    while (::fcntl(fd_, command, &lock) < 0) {
      if (errno != EINTR) throw_errno("fcntl(F_SETLKW)");
      throw_if_stopped();  // a stop signal ends the wait for the lock
    }
  }
  int fd_;
};

}  // namespace

// ---------------------------------------------------------------- fork-per-client

Counts serve_fork_per_client(Socket& listener, const ServerOptions& options) {
  Counts counts;
  std::unordered_map<int, Child> children;  // by pidfd
  Selector<int> selector(Backend::epoll);
  constexpr int kListener = -1;
  LoopListener<int> acceptor(listener, selector, kListener, [&] { return children.size() < kMaxChildren; });
  try {
    for (;;) {
      for (const auto& ready : selector.select()) {
        if (ready.key.data != kListener) {  // a child ended: reap it
          auto it = children.find(ready.key.data);
          selector.unregister(ready.key.fd);
          it->second.process->join();
          // Exit status 0: the reply was sent whole; anything else (a bad
          // request, a child killed mid-connection) is a refused connection.
          ++(it->second.process->exitcode() == 0 ? counts.served : counts.refused);
          children.erase(it);
          acceptor.update();
          continue;
        }
        auto accepted = acceptor.accept();
        if (!accepted) continue;
        Socket* conn = &*accepted;  // the child's copy of it, after fork
        Child child;
        start_child(
            child,
            [conn, &options]() -> int {
              try {
                return serve_connection(*conn, options) ? 0 : 1;
              } catch (const Interrupted&) {
                return 2;
              }
            },
            {conn->fileno()}, "fork-per-client", [&] { accepted->close(); });  // the child has it now
        const int pidfd = child.pidfd.get();
        selector.register_fd(pidfd, EVENT_READ, pidfd);
        children.emplace(pidfd, std::move(child));
        acceptor.update();
      }
    }
  } catch (const Interrupted&) {
  }
  end_children(children, [](auto& entry) { return &*entry.second.process; });
  for (auto& [pidfd, child] : children) ++(child.process->exitcode() == 0 ? counts.served : counts.refused);
  return counts;
}

// ---------------------------------------------------------------- prefork-accept, -flock, -mutex

Counts serve_prefork(Socket& listener, const ServerOptions& options, AcceptLock lock) {
  const int n = options.workers;
  // The children's counters (served, refused per slot), and for
  // prefork-mutex the lock around accept(): one SharedArray, mapped before
  // the first fork, so every child shares it. Each child writes only its slot.
  SharedArray<long long> shared(2 * static_cast<std::size_t>(n), 0);
  unique_fd lock_file;
  if (lock == AcceptLock::fcntl) {
    // The book's my_lock_init(): a temporary file, removed at once; the
    // children inherit the descriptor (fcntl locks belong to the process).
    std::string path = "/tmp/conclab-fanout-lock-XXXXXX";
    lock_file.reset(check(::mkostemp(path.data(), O_CLOEXEC), "mkostemp"));
    ::unlink(path.c_str());
  }
  // The children block in accept() itself (conclab's listeners are
  // non-blocking, for poll()): the kernel then wakes one child per
  // connection. The flag is the open file's, shared with the children.
  const int flags = check(::fcntl(listener.fileno(), F_GETFL), "fcntl");
  check(::fcntl(listener.fileno(), F_SETFL, flags & ~O_NONBLOCK), "fcntl");

  const auto child_loop = [&](int slot) -> int {
    try {
      for (;;) {
        Socket conn;
        if (lock == AcceptLock::none) {
          conn = accept_blocking(listener);
        } else if (lock == AcceptLock::fcntl) {
          FileLock held(lock_file.get());
          conn = accept_blocking(listener);
        } else {
          std::lock_guard held(shared.get_lock());
          (void)shared.get_lock().owner_died();  // a child killed holding it: nothing to repair
          conn = accept_blocking(listener);
        }
        bump(shared[2 * static_cast<std::size_t>(slot) + (serve_connection(conn, options) ? 0 : 1)]);
      }
    } catch (const Interrupted&) {
    }
    return 0;
  };
  std::vector<int> keep{listener.fileno()};
  if (lock_file) keep.push_back(lock_file.get());

  std::vector<Child> children(static_cast<std::size_t>(n));
  Selector<int> selector(Backend::epoll);
  const auto start = [&](int slot) {
    Child& c = children[static_cast<std::size_t>(slot)];
    start_child(c, [&child_loop, slot] { return child_loop(slot); }, keep, fmt::format("prefork-{}", slot));
    selector.register_fd(c.pidfd.get(), EVENT_READ, slot);
  };
  try {
    for (int slot = 0; slot < n; ++slot) start(slot);
    for (;;) {
      for (const auto& ready : selector.select()) {  // a child ended (killed): reap and replace it
        Child& c = children[static_cast<std::size_t>(ready.key.data)];
        selector.unregister(ready.key.fd);
        c.process->join();
        c.pidfd.reset();
        throw_if_stopped();
        say_replaced(ready.key.data, *c.process);
        start(ready.key.data);
      }
    }
  } catch (const Interrupted&) {
  }
  end_children(children, [](Child& c) { return c.process ? &*c.process : nullptr; });
  ::fcntl(listener.fileno(), F_SETFL, flags);

  Counts counts;
  counts.workers = n;
  for (int slot = 0; slot < n; ++slot) {
    const long long served = shared[2 * static_cast<std::size_t>(slot)];
    counts.per_worker.push_back(served);
    counts.served += served;
    counts.refused += shared[2 * static_cast<std::size_t>(slot) + 1];
  }
  return counts;
}

// ---------------------------------------------------------------- prefork-fdpass

Counts serve_prefork_fdpass(Socket& listener, const ServerOptions& options) {
  const int n = options.workers;
  struct Worker {
    Child child;
    Socket channel;  // the parent's end of the socketpair
    bool busy = false;
  };
  std::vector<Worker> workers(static_cast<std::size_t>(n));
  Counts counts;
  counts.workers = n;
  counts.per_worker.assign(static_cast<std::size_t>(n), 0);
  // The selector's data: -1 the listener, slot a child's channel, n + slot its pidfd.
  Selector<int> selector(Backend::epoll);
  constexpr int kListener = -1;
  int free_children = 0;
  LoopListener<int> acceptor(listener, selector, kListener, [&] { return free_children > 0; });  // none free: wait
  const auto start = [&](int slot) {
    Worker& w = workers[static_cast<std::size_t>(slot)];
    auto [parent_end, child_end] = socketpair();
    const int fd = child_end.fileno();
    start_child(
        w.child,
        [fd, &options]() -> int {
          // The child: serve what the parent passes, say "done" with one byte.
          Socket channel{unique_fd(fd)};
          try {
            while (auto passed = recv_fd(channel)) {
              const char done = serve_connection(passed->socket, options) ? '1' : '0';
              passed->socket.close();
              channel.send_all(std::string_view(&done, 1));
            }
          } catch (const Interrupted&) {
          }
          return 0;
        },
        {fd}, fmt::format("prefork-fdpass-{}", slot), [&] { child_end.close(); });
    w.channel = std::move(parent_end);
    w.busy = false;
    selector.register_fd(w.channel.fileno(), EVENT_READ, slot);
    selector.register_fd(w.child.pidfd.get(), EVENT_READ, n + slot);
    ++free_children;
    acceptor.update();
  };
  // The child is gone (or its channel broke): what it was serving is lost.
  const auto drop_channel = [&](Worker& w) {
    if (!w.channel) return;
    selector.unregister(w.channel.fileno());
    w.channel.close();
    if (w.busy) ++counts.refused;
    else --free_children;
    w.busy = false;
    acceptor.update();
  };
  try {
    for (int slot = 0; slot < n; ++slot) start(slot);
    for (;;) {
      for (const auto& ready : selector.select()) {
        const int data = ready.key.data;
        if (data == kListener) {
          auto accepted = acceptor.accept();
          if (!accepted) continue;
          // The first free child, as the book's parent: the early ones get most.
          for (auto& w : workers) {
            if (w.busy || !w.channel) continue;
            try {
              send_fd(w.channel, *accepted);
              w.busy = true;
              --free_children;
            } catch (const SocketError&) {
              drop_channel(w);  // died a moment ago: its pidfd says so next
              ++counts.refused;
            }
            break;
          }
          acceptor.update();
        } else if (data < n) {  // a child says it is done, or its channel closed
          Worker& w = workers[static_cast<std::size_t>(data)];
          if (!w.channel) continue;
          char done = 0;
          const ssize_t got = ::recv(w.channel.fileno(), &done, 1, MSG_DONTWAIT);
          if (got == 1 && w.busy) {
            w.busy = false;
            ++free_children;
            if (done == '1') {
              ++counts.served;
              ++counts.per_worker[static_cast<std::size_t>(data)];
            } else {
              ++counts.refused;
            }
            acceptor.update();
          } else if (got == 0 || (got < 0 && errno != EAGAIN && errno != EINTR)) {
            drop_channel(w);
          }
        } else {  // a child ended: reap and replace it
          const int slot = data - n;
          Worker& w = workers[static_cast<std::size_t>(slot)];
          selector.unregister(ready.key.fd);
          w.child.process->join();
          w.child.pidfd.reset();
          drop_channel(w);
          throw_if_stopped();
          say_replaced(slot, *w.child.process);
          start(slot);
        }
      }
    }
  } catch (const Interrupted&) {
  }
  end_children(workers, [](Worker& w) { return w.child.process ? &*w.child.process : nullptr; });
  for (std::size_t slot = 0; slot < workers.size(); ++slot) {
    Worker& w = workers[slot];
    if (!w.busy) continue;
    // The child may have said "done" after the parent's last look.
    char done = 0;
    if (w.channel && ::recv(w.channel.fileno(), &done, 1, MSG_DONTWAIT) == 1 && done == '1') {
      ++counts.served;
      ++counts.per_worker[slot];
    } else {
      ++counts.refused;  // stopped mid-connection
    }
  }
  return counts;
}

}  // namespace conclab::fanout::detail
