#include "conclab/pool.hpp"

#include <fcntl.h>
#include <fmt/core.h>
#include <poll.h>
#include <sched.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <list>

#include "conclab/clock.hpp"
#include "conclab/error.hpp"
#include "conclab/process.hpp"

namespace conclab {
namespace detail {

void report_callback_error(std::exception_ptr error) noexcept {
  std::fprintf(stderr, "Exception in callback: %s\n", describe(error).c_str());
}

namespace {

int default_size() { return std::max(1u, std::thread::hardware_concurrency()); }

int checked_size(std::optional<int> n) {
  int size = n.value_or(default_size());
  if (size < 1) throw std::invalid_argument("Number of processes must be at least 1");
  return size;
}

// --- the channel protocol ----------------------------------------------------------
// Every message, both ways: [u32 kind][u64 length][length bytes].
enum Kind : std::uint32_t {
  kTask = 1,         // parent -> worker: [trampoline][fn][encoded arguments]
  kExit = 2,         // parent -> worker: leave
  kResult = 3,       // worker -> parent: the encoded result
  kError = 4,        // worker -> parent: "<type>: <message>" of the exception
  kInitFailed = 5,   // worker -> parent: the initializer threw; the worker exits
};
constexpr std::size_t kHeader = sizeof(std::uint32_t) + sizeof(std::uint64_t);

// How long a waiting worker or manager polls before it sleeps (see spin_recv).
// (the spin window of clock.hpp; workers inherit it when forked)

void append_frame(std::string& out, Kind kind, std::string_view body) {
  wire::encode<std::uint32_t>(out, kind);
  wire::encode<std::uint64_t>(out, body.size());
  out.append(body);
}

// Takes one whole frame off the front of `buffer`, if there is one.
std::optional<std::pair<Kind, std::string>> take_frame(std::string& buffer) {
  if (buffer.size() < kHeader) return std::nullopt;
  std::string_view head(buffer.data(), kHeader);
  auto kind = static_cast<Kind>(wire::decode<std::uint32_t>(head));
  auto size = wire::decode<std::uint64_t>(head);
  if (buffer.size() < kHeader + size) return std::nullopt;
  std::string body = buffer.substr(kHeader, size);
  buffer.erase(0, kHeader + size);
  return std::make_pair(kind, std::move(body));
}


// --- the worker process ---------------------------------------------------------------

bool write_all(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

// Waits for bytes: first by polling for a short while, then by sleeping in
// recv. On a virtual machine, waking a sleeping CPU costs tens of
// microseconds; a task that arrives within the spin is picked up at once.
ssize_t spin_recv(int fd, char* buffer, std::size_t size) {
  const auto until = std::chrono::steady_clock::now() + spin_window();
  do {
    ssize_t n = ::recv(fd, buffer, size, MSG_DONTWAIT);
    if (n >= 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) return n;
    ::sched_yield();  // let a runnable thread on this CPU go first
  } while (std::chrono::steady_clock::now() < until);
  return ::recv(fd, buffer, size, 0);
}

// The loop a worker runs until told to exit or the parent goes away. It
// never returns: the worker leaves with _exit.
[[noreturn]] void worker_main(int fd, void (*initializer)()) {
  std::string out;
  if (initializer) {
    try {
      initializer();
    } catch (...) {
      append_frame(out, kInitFailed, describe(std::current_exception(), true));
      write_all(fd, out);
      std::fflush(nullptr);
      ::_exit(3);
    }
  }
  std::string in;
  char buffer[64 * 1024];
  for (;;) {
    auto frame = take_frame(in);
    if (!frame) {
      ssize_t n = spin_recv(fd, buffer, sizeof buffer);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;  // the parent is gone
      in.append(buffer, static_cast<std::size_t>(n));
      continue;
    }
    auto& [kind, body] = *frame;
    if (kind != kTask) break;
    std::string_view view(body);
    auto trampoline = reinterpret_cast<Trampoline>(wire::decode<std::uintptr_t>(view));
    auto fn = wire::decode<std::uintptr_t>(view);
    out.clear();
    try {
      std::string result = trampoline(fn, view);
      append_frame(out, kResult, result);
    } catch (...) {
      append_frame(out, kError, describe(std::current_exception(), true));
    }
    std::fflush(nullptr);  // what the task printed comes out before its result is known
    // One result per send, before the next task starts: if this worker dies,
    // the parent knows the oldest task without a result is the one it was running.
    if (!write_all(fd, out)) break;
  }
  std::fflush(nullptr);
  ::_exit(0);
}

}  // namespace

// --- the manager: the pool's result thread ------------------------------------------------
//
// One thread owns the workers. It forks them (so that PR_SET_PDEATHSIG ties
// each worker's life to this thread: if the program dies, the workers die),
// sends each its tasks over its own socket, reads the results, and watches
// each worker's pidfd: a worker that dies fails the task it was running and
// is replaced. Other threads only touch the queue, under the mutex, and wake
// the manager through an eventfd.
class PoolManager {
 public:
  PoolManager(int size, void (*initializer)()) : size_(size), initializer_(initializer) {
    wake_.reset(check(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK), "eventfd"));
    thread_ = std::thread([this] { run(); });
    std::unique_lock lock(mutex_);
    started_cv_.wait(lock, [&] { return started_; });
    if (start_error_) {
      lock.unlock();
      thread_.join();
      std::rethrow_exception(start_error_);
    }
  }

  ~PoolManager() {
    if (thread_.joinable()) {
      terminate();
      thread_.join();
    }
  }

  void enqueue(ProcessTask task) {
    bool was_empty;
    {
      std::lock_guard lock(mutex_);
      if (broken_) {
        task.on_error(std::make_exception_ptr(TaskError(*broken_)));
        return;
      }
      if (state_ != State::running) throw UsageError("Pool not running");
      was_empty = queue_.empty();
      queue_.push_back(std::move(task));
    }
    // The manager takes the whole queue at once: one wake-up per batch will do.
    if (was_empty) wake();
  }

  void require_running() const {
    std::lock_guard lock(mutex_);
    if (broken_) throw TaskError(*broken_);
    if (state_ != State::running) throw UsageError("Pool not running");
  }

  void close() {
    {
      std::lock_guard lock(mutex_);
      if (state_ == State::running) state_ = State::closed;
    }
    wake();
  }

  void terminate() {
    {
      std::lock_guard lock(mutex_);
      state_ = State::terminating;
    }
    wake();
  }

  void join() {
    {
      std::lock_guard lock(mutex_);
      if (state_ == State::running) throw UsageError("Pool is still running: close() or terminate() it first");
    }
    std::lock_guard join_lock(join_mutex_);
    if (thread_.joinable()) thread_.join();
  }

  std::size_t replaced() const { return replaced_.load(); }

  std::vector<pid_t> pids() const {
    std::lock_guard lock(mutex_);
    return pids_;
  }

 private:
  enum class State { running, closed, terminating };

  struct Worker {
    pid_t pid = -1;
    unique_fd channel;
    unique_fd pidfd;
    std::deque<ProcessTask> outstanding;  // sent, no result yet; the front one is running
    std::string in, out;                  // bytes received / still to send
    bool exit_sent = false;
    std::optional<std::string> init_error;
  };

  // How many tasks a worker holds at once: the one it runs and at least one
  // waiting in its socket, so that it never idles between tasks; with a
  // backlog, up to kMaxPrefetch, so that tasks travel in batches. Near the end
  // of a backlog it falls back to two, which keeps the workers' loads even.
  static constexpr std::size_t kMaxPrefetch = 16;
  std::size_t prefetch() const {
    return std::clamp<std::size_t>(pending_.size() / std::max<std::size_t>(workers_.size(), 1), 2, kMaxPrefetch);
  }

  void wake() {
    std::uint64_t one = 1;
    [[maybe_unused]] auto n = ::write(wake_.get(), &one, sizeof one);
  }

  void spawn() {
    int pair[2];
    check(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair), "socketpair");
    unique_fd parent_end(pair[0]), child_end(pair[1]);
    const pid_t parent = ::getpid();
    std::fflush(nullptr);
    pid_t pid = check(::fork(), "fork");
    if (pid == 0) {
      // In the worker: die with the pool, drop every descriptor of the pool's.
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (::getppid() != parent) ::_exit(1);
      (void)parent_end.release();
      ::close(pair[0]);
      ::close(wake_.get());
      for (auto& w : workers_) {
        ::close(w.channel.get());
        ::close(w.pidfd.get());
      }
      worker_main(child_end.get(), initializer_);
    }
    Worker w;
    w.pid = pid;
    w.channel = std::move(parent_end);
    child_end.reset();
    check(::fcntl(w.channel.get(), F_SETFL, O_NONBLOCK), "fcntl");
    int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
    if (pidfd < 0) {
      int err = errno;
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
      throw_errno("pidfd_open", err);
    }
    w.pidfd.reset(pidfd);
    workers_.push_back(std::move(w));
    publish_pids();
  }

  void publish_pids() {
    std::lock_guard lock(mutex_);
    pids_.clear();
    for (auto& w : workers_) pids_.push_back(w.pid);
  }

  void run() {
    try {
      for (int i = 0; i < size_; ++i) spawn();
    } catch (...) {
      start_error_ = std::current_exception();
      kill_all_and_reap();
    }
    {
      std::lock_guard lock(mutex_);
      started_ = true;
    }
    started_cv_.notify_all();
    if (start_error_) return;
    try {
      loop();
    } catch (...) {
      // A system call of the pool itself failed: nothing more can run.
      std::fprintf(stderr, "Pool: %s\n", describe(std::current_exception(), true).c_str());
      fail_everything("the pool failed: " + describe(std::current_exception(), true));
      kill_all_and_reap();
    }
  }

  void loop() {
    for (;;) {
      State state;
      {
        std::lock_guard lock(mutex_);
        while (!queue_.empty()) {
          pending_.push_back(std::move(queue_.front()));
          queue_.pop_front();
        }
        state = state_;
      }
      if (state == State::terminating) {
        kill_all_and_reap();
        fail_everything("the pool was terminated");
        return;
      }
      dispatch(state);
      if (state == State::closed && workers_.empty() && pending_.empty()) return;
      wait_and_handle();
    }
  }

  // Gives idle workers tasks, and tells every worker to leave once a closed
  // pool has nothing left to do.
  void dispatch(State state) {
    // Deal the tasks out in rounds, one per worker per round, so that a few
    // tasks go to different workers and not all into one worker's socket.
    const std::size_t limit = prefetch();
    for (std::size_t depth = 1; depth <= limit && !pending_.empty(); ++depth) {
      for (auto& w : workers_) {
        if (pending_.empty()) break;
        if (w.exit_sent || w.outstanding.size() >= depth) continue;
        auto& task = pending_.front();
        std::string body;
        wire::encode(body, reinterpret_cast<std::uintptr_t>(task.trampoline));
        wire::encode(body, task.fn);
        body.append(task.args);
        append_frame(w.out, kTask, body);
        w.outstanding.push_back(std::move(task));
        pending_.pop_front();
      }
    }
    bool idle = pending_.empty() &&
                std::all_of(workers_.begin(), workers_.end(), [](auto& w) { return w.outstanding.empty(); });
    if (state == State::closed && idle) {
      for (auto& w : workers_)
        if (!w.exit_sent) {
          append_frame(w.out, kExit, {});
          w.exit_sent = true;
        }
    }
    for (auto& w : workers_) flush(w);
  }

  // Sends what the socket takes now; the rest waits for POLLOUT.
  void flush(Worker& w) {
    while (!w.out.empty() && w.channel) {
      ssize_t n = ::send(w.channel.get(), w.out.data(), w.out.size(), MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
      if (n <= 0) {  // the worker is gone; its pidfd will say how
        w.out.clear();
        w.channel.reset();
        return;
      }
      w.out.erase(0, static_cast<std::size_t>(n));
    }
  }

  void wait_and_handle() {
    std::vector<pollfd> fds{{wake_.get(), POLLIN, 0}};
    for (auto& w : workers_) {
      fds.push_back({w.pidfd.get(), POLLIN, 0});
      short events = POLLIN;
      if (!w.out.empty()) events |= POLLOUT;
      fds.push_back({w.channel ? w.channel.get() : -1, events, 0});
    }
    // Poll without sleeping for a short while first (see spin_recv).
    const auto until = std::chrono::steady_clock::now() + spin_window();
    int ready;
    while ((ready = ::poll(fds.data(), fds.size(), 0)) == 0 && std::chrono::steady_clock::now() < until)
      ::sched_yield();
    if (ready == 0) ready = ::poll(fds.data(), fds.size(), -1);
    if (ready < 0) {
      if (errno == EINTR) return;
      throw_errno("poll");
    }
    if (fds[0].revents) {
      std::uint64_t count;
      [[maybe_unused]] auto n = ::read(wake_.get(), &count, sizeof count);
    }
    // Results first, deaths after: a worker that answered and then died
    // still delivers its answer.
    for (std::size_t i = 0; i < workers_.size(); ++i) {
      auto& channel = fds[2 + 2 * i];
      if (channel.revents & (POLLIN | POLLHUP | POLLERR)) receive(workers_[i]);
      if (channel.revents & POLLOUT) flush(workers_[i]);
    }
    std::vector<std::size_t> dead;
    for (std::size_t i = 0; i < workers_.size(); ++i)
      if (fds[1 + 2 * i].revents) dead.push_back(i);
    for (auto it = dead.rbegin(); it != dead.rend(); ++it) bury(*it);
  }

  void receive(Worker& w) {
    char buffer[64 * 1024];
    for (;;) {
      ssize_t n = ::recv(w.channel.get(), buffer, sizeof buffer, 0);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
      if (n <= 0) {
        w.channel.reset();  // closed: the worker is exiting; the pidfd tells when
        break;
      }
      w.in.append(buffer, static_cast<std::size_t>(n));
    }
    while (auto frame = take_frame(w.in)) {
      auto& [kind, body] = *frame;
      if (kind == kInitFailed) {
        w.init_error = body;
        continue;
      }
      if (w.outstanding.empty()) continue;  // cannot happen with a sane worker
      ProcessTask task = std::move(w.outstanding.front());
      w.outstanding.pop_front();
      if (kind == kResult) {
        try {
          task.on_value(body);
        } catch (...) {  // a result that does not decode
          task.on_error(std::current_exception());
        }
      } else {
        task.on_error(std::make_exception_ptr(RemoteError(body)));
      }
    }
  }

  // Reaps worker `i`, fails the task it was running, puts its other tasks
  // back at the head of the queue, and replaces it when work remains.
  void bury(std::size_t i) {
    Worker w = std::move(workers_[i]);
    workers_.erase(workers_.begin() + static_cast<std::ptrdiff_t>(i));
    if (w.channel) receive(w);  // an answer sent just before dying
    int status = 0;
    while (::waitpid(w.pid, &status, 0) < 0 && errno == EINTR) {
    }
    const int code = exitcode_from_status(status);
    if (w.init_error) {
      std::string message = "Pool initializer failed: " + *w.init_error;
      {
        std::lock_guard lock(mutex_);
        broken_ = message;
        if (state_ == State::running) state_ = State::closed;
      }
      for (auto& t : w.outstanding) pending_.push_front(std::move(t));
      fail_everything(message);
    }
    std::optional<ProcessTask> lost;  // the task it was running
    if (!w.init_error && !w.outstanding.empty()) {
      lost = std::move(w.outstanding.front());
      w.outstanding.pop_front();
      for (auto it = w.outstanding.rbegin(); it != w.outstanding.rend(); ++it) pending_.push_front(std::move(*it));
    }
    publish_pids();
    bool needed;
    {
      std::lock_guard lock(mutex_);
      needed = !broken_ && (state_ == State::running || !pending_.empty() || !queue_.empty());
    }
    // Replace it first, so that whoever learns of the loss finds the pool whole.
    if (needed && !w.exit_sent && static_cast<int>(workers_.size()) < size_) {
      spawn();
      ++replaced_;
    }
    if (lost)
      lost->on_error(std::make_exception_ptr(WorkerLost(
          fmt::format("worker process {} died while running the task: {}", w.pid, Process::describe_status(code)))));
  }

  void kill_all_and_reap() {
    for (auto& w : workers_) ::kill(w.pid, SIGKILL);
    for (auto& w : workers_) {
      while (::waitpid(w.pid, nullptr, 0) < 0 && errno == EINTR) {
      }
      for (auto& t : w.outstanding) pending_.push_back(std::move(t));
    }
    workers_.clear();
    publish_pids();
  }

  void fail_everything(const std::string& message) {
    {
      std::lock_guard lock(mutex_);
      while (!queue_.empty()) {
        pending_.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
    }
    for (auto& w : workers_)
      while (!w.outstanding.empty()) {
        pending_.push_back(std::move(w.outstanding.front()));
        w.outstanding.pop_front();
      }
    for (auto& t : pending_) t.on_error(std::make_exception_ptr(TaskError(message)));
    pending_.clear();
  }

  const int size_;
  void (*const initializer_)();
  unique_fd wake_;
  std::thread thread_;
  std::mutex join_mutex_;

  mutable std::mutex mutex_;  // guards the members below, shared with other threads
  std::condition_variable started_cv_;
  bool started_ = false;
  std::exception_ptr start_error_;
  State state_ = State::running;
  std::deque<ProcessTask> queue_;
  std::optional<std::string> broken_;
  std::vector<pid_t> pids_;

  // The manager thread's own.
  std::vector<Worker> workers_;
  std::deque<ProcessTask> pending_;
  std::atomic<std::size_t> replaced_{0};
};

}  // namespace detail

// --- Pool ---------------------------------------------------------------------------------

Pool::Pool(std::optional<int> processes, void (*initializer)())
    : processes_(detail::checked_size(processes)),
      manager_(std::make_unique<detail::PoolManager>(processes_, initializer)) {}

Pool::~Pool() {
  try {
    close();
    join();
  } catch (...) {
  }
}

void Pool::close() { manager_->close(); }
void Pool::terminate() { manager_->terminate(); }
void Pool::join() { manager_->join(); }
std::size_t Pool::workers_replaced() const { return manager_->replaced(); }
std::vector<pid_t> Pool::worker_pids() const { return manager_->pids(); }
void Pool::require_running() const { manager_->require_running(); }
void Pool::enqueue(detail::ProcessTask task) { manager_->enqueue(std::move(task)); }

// --- ThreadPool -----------------------------------------------------------------------------

ThreadPool::ThreadPool(std::optional<int> threads, std::function<void()> initializer)
    : initializer_(std::move(initializer)) {
  int n = threads.value_or(detail::default_size());
  if (n < 1) throw std::invalid_argument("Number of threads must be at least 1");
  threads_.reserve(static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) {
    threads_.emplace_back([this] { worker_loop(); });
    threads_.back().set_name(fmt::format("ThreadPool-worker-{}", i + 1));
    threads_.back().start();
  }
}

ThreadPool::~ThreadPool() {
  close();
  join();
}

void ThreadPool::require_running() const {
  std::lock_guard lock(mutex_);
  if (broken_) throw TaskError(*broken_);
  if (state_ != State::running) throw UsageError("Pool not running");
}

void ThreadPool::enqueue(std::function<void()> job, std::function<void(std::exception_ptr)> fail) {
  {
    std::lock_guard lock(mutex_);
    if (broken_) {
      fail(std::make_exception_ptr(TaskError(*broken_)));
      return;
    }
    if (state_ != State::running) throw UsageError("Pool not running");
    queue_.push_back({std::move(job), std::move(fail)});
  }
  has_work_.notify_one();
}

void ThreadPool::worker_loop() {
  if (initializer_) {
    try {
      initializer_();
    } catch (...) {
      // No worker can be trusted to run tasks: fail them all, now and later.
      std::string message = "ThreadPool initializer failed: " + describe(std::current_exception(), true);
      std::deque<Job> dropped;
      {
        std::lock_guard lock(mutex_);
        if (!broken_) broken_ = message;
        state_ = State::terminated;
        dropped.swap(queue_);
      }
      has_work_.notify_all();
      for (auto& job : dropped) job.fail(std::make_exception_ptr(TaskError(*broken_)));
      return;
    }
  }
  for (;;) {
    Job job;
    {
      std::unique_lock lock(mutex_);
      has_work_.wait(lock, [&] { return !queue_.empty() || state_ != State::running; });
      if (queue_.empty()) return;  // closed and drained, or terminated
      job = std::move(queue_.front());
      queue_.pop_front();
    }
    job.run();
  }
}

void ThreadPool::close() {
  {
    std::lock_guard lock(mutex_);
    if (state_ == State::running) state_ = State::closed;
  }
  has_work_.notify_all();
}

void ThreadPool::terminate() {
  std::deque<Job> dropped;
  {
    std::lock_guard lock(mutex_);
    state_ = State::terminated;
    dropped.swap(queue_);
  }
  has_work_.notify_all();
  for (auto& job : dropped) job.fail(std::make_exception_ptr(TaskError("the pool was terminated")));
}

void ThreadPool::join() {
  {
    std::lock_guard lock(mutex_);
    if (state_ == State::running) throw UsageError("Pool is still running: close() or terminate() it first");
  }
  std::call_once(joined_, [&] {
    for (auto& t : threads_) t.join();
  });
}

}  // namespace conclab
