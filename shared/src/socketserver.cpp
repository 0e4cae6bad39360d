// socketserver.cpp — the server loop and the Threading / Forking mix-ins.
#include "conclab/socketserver.hpp"

#include "conclab/clock.hpp"

#include <sys/eventfd.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fmt/format.h>

#include "conclab/error.hpp"
#include "conclab/fd.hpp"
#include "conclab/signals.hpp"

namespace conclab {

namespace {
constexpr auto kAcceptBackoff = std::chrono::milliseconds(50);
}  // namespace

// ---------------------------------------------------------------- BaseServer

BaseServer::BaseServer(Socket socket, Runner runner)
    : socket_(std::move(socket)),
      address_(socket_.address()),
      runner_(std::move(runner)),
      wake_fd_(check(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK), "eventfd")) {
  selector_.register_fd(wake_fd_.get(), EVENT_READ, [this] { on_wake(); });
}

BaseServer::~BaseServer() { server_close(); }

void BaseServer::wake() noexcept {
  const std::uint64_t one = 1;
  [[maybe_unused]] auto n = ::write(wake_fd_.get(), &one, sizeof one);
}

void BaseServer::on_wake() {
  std::uint64_t count;
  [[maybe_unused]] auto n = ::read(wake_fd_.get(), &count, sizeof count);
}

void BaseServer::watch(int fd, std::function<void()> ready) { selector_.register_fd(fd, EVENT_READ, std::move(ready)); }

void BaseServer::unwatch(int fd) {
  if (selector_.contains(fd)) selector_.unregister(fd);
}

void BaseServer::update_listening() {
  const bool want = !closed_ && !backoff_until_ && accepting();
  if (want == listening_) return;
  if (want)
    selector_.register_fd(socket_.fileno(), EVENT_READ, {});
  else
    selector_.unregister(socket_.fileno());
  listening_ = want;
}

bool BaseServer::run_ready(const std::vector<int>& fds) {
  bool served = false;
  for (int fd : fds) {
    if (!selector_.contains(fd)) continue;  // unregistered by an earlier callback
    if (fd == socket_.fileno() && listening_) {
      served = handle_request_noblock() || served;
    } else {
      auto callback = selector_.get_key(fd).data;  // a copy: the callback may unwatch itself
      if (callback) callback();
    }
  }
  return served;
}

std::vector<int> BaseServer::wait_once(std::optional<std::chrono::nanoseconds> timeout) {
  update_listening();
  std::vector<int> fds;
  for (auto& [key, events] : selector_.select(timeout)) fds.push_back(key.fd);
  return fds;
}

void BaseServer::serve_forever() {
  {
    std::lock_guard lock(state_mutex_);
    if (serving_) throw UsageError("serve_forever: the server is already serving");
    if (closed_) throw UsageError("serve_forever: the server is closed");
    serving_ = true;
    serving_thread_ = std::this_thread::get_id();
  }
  struct Done {
    BaseServer& s;
    ~Done() {
      std::lock_guard lock(s.state_mutex_);
      s.serving_ = false;
      s.shutdown_request_ = false;  // as Python: serve_forever() may be called again
      s.stopped_.notify_all();
    }
  } done{*this};
  while (!shutdown_request_.load()) {
    run_ready(wait_once(std::nullopt));
    service_actions();
  }
}

bool BaseServer::handle_request() {
  if (closed_) throw UsageError("handle_request: the server is closed");
  using Clock = std::chrono::steady_clock;
  std::optional<Clock::time_point> until;
  if (timeout) until = detail::deadline_after(*timeout);  // too large for a deadline: none (never overflows)
  for (;;) {
    std::optional<std::chrono::nanoseconds> left;
    if (until) left = std::max(Clock::duration::zero(), *until - Clock::now());
    const bool served = run_ready(wait_once(left));
    service_actions();
    if (served) return true;
    if (until && Clock::now() >= *until) {
      handle_timeout();
      return false;
    }
  }
}

void BaseServer::shutdown() {
  shutdown_request_ = true;
  wake();
  std::unique_lock lock(state_mutex_);
  // Not serving (not yet, or no more): the request stays for the next
  // serve_forever(), which returns at once; Python's shutdown() would wait
  // forever here. From a handler on the serving thread: waiting would too.
  if (!serving_ || serving_thread_ == std::this_thread::get_id()) return;
  stopped_.wait(lock, [this] { return !serving_; });
}

void BaseServer::server_close() {
  {
    std::lock_guard lock(state_mutex_);
    if (closed_) return;
    closed_ = true;
  }
  if (listening_) selector_.unregister(socket_.fileno());
  listening_ = false;
  // A stream server stops taking connections first; a datagram server's
  // socket is the one its workers answer on, so it is closed once they are done.
  if (is_stream()) socket_.close();
  close_workers();
  if (!is_stream() && workers_running() == 0) socket_.close();
  if (after_close_) after_close_();
}

void BaseServer::out_of_resources(int err) {
  if (!told_out_of_resources_)
    fmt::print(stderr, "server {}: accept: {}; not accepting for {} ms (connections wait in the backlog)\n", address_,
               std::strerror(err), kAcceptBackoff.count());
  told_out_of_resources_ = true;
  backoff_until_ = std::chrono::steady_clock::now() + kAcceptBackoff;
  selector_.call_later(kAcceptBackoff, [this] { backoff_until_.reset(); });
}

bool BaseServer::handle_request_noblock() {
  if (is_stream()) {
    int err = 0;
    auto accepted = socket_.try_accept(&err);
    if (!accepted) {
      if (err) out_of_resources(err);
      return false;
    }
    told_out_of_resources_ = false;
    HandlerContext context{accepted->conn, "", accepted->peer, *this};
    dispatch(context);
  } else {
    Datagram datagram = socket_.recvfrom(max_packet_size);
    HandlerContext context{socket_, std::move(datagram.data), datagram.peer, *this};
    dispatch(context);
  }
  return true;
}

void BaseServer::dispatch(HandlerContext& context) {
  // A thread or a child that cannot start: Python reports it and closes the
  // request (the connection closes when `context` goes).
  try {
    process_request(context);
  } catch (const Interrupted&) {
    throw;
  } catch (...) {
    handle_error(context.client_address, std::current_exception());
  }
}

void BaseServer::process_request(HandlerContext& context) { finish_request(context); }

bool BaseServer::finish_request(HandlerContext& context) {
  try {
    runner_(context);
    return true;
  } catch (const Interrupted&) {
    throw;
  } catch (...) {
    handle_error(context.client_address, std::current_exception());
    return false;
  }
}

void BaseServer::handle_error(const Address& client, std::exception_ptr error) {
  std::string what = "unknown exception";
  try {
    std::rethrow_exception(error);
  } catch (const std::exception& e) {
    what = e.what();
  } catch (...) {
  }
  const std::string who = client.str().empty() ? "an unnamed client" : client.str();
  fmt::print(stderr, "error handling request from {}: {}\n", who, what);
}

// ---------------------------------------------------------------- ThreadingMixIn

ThreadingMixIn::~ThreadingMixIn() { join_all(true); }

std::size_t ThreadingMixIn::active_threads() {
  std::lock_guard lock(mutex_);
  return workers_.size();
}

std::size_t ThreadingMixIn::workers_running() { return active_threads(); }

void ThreadingMixIn::process_request(HandlerContext& context) {
  // The thread owns the connection from here; a datagram's thread answers
  // on the server's socket.
  std::shared_ptr<Socket> conn = is_stream() ? std::make_shared<Socket>(std::move(context.request)) : nullptr;
  std::lock_guard lock(mutex_);
  if (next_id_ == 0) reserve_fd_table();  // once: a burst of clients then never waits for it to grow
  const std::uint64_t id = next_id_++;
  Thread thread([this, id, conn, packet = std::move(context.packet), client = context.client_address]() mutable {
    HandlerContext mine{conn ? *conn : socket(), std::move(packet), client, *this};
    try {
      finish_request(mine);
    } catch (const Interrupted&) {
      // a stop signal: the serving thread ends the server; this one just ends
    }
    {
      std::lock_guard done(mutex_);
      if (auto it = workers_.find(id); it != workers_.end()) it->second.fd = -1;
      if (conn) conn->close();  // under the lock: no daemon shutdown() can reach a reused number
      finished_.push_back(id);
    }
    wake();  // the loop joins this thread now (gh-81374: CPython kept them all)
  });
  auto& worker = workers_.emplace(id, Worker{std::move(thread), conn ? conn->fileno() : -1, daemon_threads})
                     .first->second;
  try {
    worker.thread.start();
  } catch (...) {
    if (conn) context.request = std::move(*conn);  // closed by the caller, as Python's shutdown_request
    workers_.erase(id);
    throw;
  }
}

void ThreadingMixIn::service_actions() { join_finished(); }

void ThreadingMixIn::join_finished() {
  std::vector<Thread> done;
  {
    std::lock_guard lock(mutex_);
    for (std::uint64_t id : finished_)
      if (auto node = workers_.extract(id)) done.push_back(std::move(node.mapped().thread));
    finished_.clear();
  }
  for (Thread& t : done) t.join();  // each has finished its work: returns at once
}

void ThreadingMixIn::join_all(bool daemons_too) {
  std::vector<Thread> all;
  {
    std::lock_guard lock(mutex_);
    for (auto it = workers_.begin(); it != workers_.end();) {
      if (it->second.daemon && !daemons_too) {
        ++it;
        continue;
      }
      // A daemon thread may be blocked in recv() for good: end its connection.
      if (it->second.daemon && it->second.fd >= 0) ::shutdown(it->second.fd, SHUT_RDWR);
      all.push_back(std::move(it->second.thread));
      it = workers_.erase(it);
    }
  }
  for (Thread& t : all) t.join();
  join_finished();
}

void ThreadingMixIn::close_workers() {
  if (block_on_close) join_all(false);
}

// ---------------------------------------------------------------- ForkingMixIn

ForkingMixIn::~ForkingMixIn() { end_workers(); }

std::size_t ForkingMixIn::workers_running() { return children_.size(); }

void ForkingMixIn::process_request(HandlerContext& context) {
  std::vector<int> keep = pass_fds;
  keep.push_back(context.request.fileno());
  Process process([this, &context]() -> int {
    // The child: a copy of the server at this moment, with only `keep` open.
    try {
      return finish_request(context) ? 0 : 1;
    } catch (const Interrupted&) {
      return 0;
    }
  });
  process.set_name("request-child").set_pass_fds(std::move(keep));
  process.start();
  const pid_t pid = *process.pid();
  // A pidfd says when this child ends: it is reaped at once, with no SIGCHLD
  // handler to install or signal to lose.
  const int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  auto& child = children_.emplace(pid, Child{std::move(process), unique_fd(pidfd)}).first->second;
  if (pidfd >= 0) {
    watch(pidfd, [this, pid] { reap(pid); });
  } else {
    // Out of descriptors: wait for this one now rather than lose it.
    child.process.join();
    children_.erase(pid);
  }
  // The parent's copy of the connection closes when `context` goes.
}

void ForkingMixIn::reap(pid_t pid) {
  auto it = children_.find(pid);
  if (it == children_.end()) return;
  unwatch(it->second.pidfd.get());
  it->second.process.join();  // it has ended: no wait
  children_.erase(it);
}

void ForkingMixIn::close_workers() {
  if (!block_on_close) return;
  end_workers();
}

void ForkingMixIn::end_workers() {
  // A stop signal ended the server: the children serving clients are told
  // too (Ctrl-C reaches the whole process group; `kill <pid>` only the parent).
  if (const int signo = stop_signal())
    for (auto& [pid, child] : children_) ::kill(pid, signo);
  while (!children_.empty()) reap(children_.begin()->first);
}

// ---------------------------------------------------------------- Unix sockets

namespace detail {

Socket unix_server_socket(const std::string& path) { return create_unix_server(path); }

void remove_unix_socket(const std::string& path) noexcept {
  if (path.empty() || path[0] == '@' || path[0] == '\0') return;  // abstract: no file
  struct stat st {};
  if (::lstat(path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode)) ::unlink(path.c_str());
}

}  // namespace detail
}  // namespace conclab
