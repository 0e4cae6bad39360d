#include "conclab/pool.hpp"

#include <fmt/core.h>
#include <poll.h>
#include <sched.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <map>

#include "conclab/clock.hpp"
#include "conclab/error.hpp"
#include "conclab/process.hpp"
#include "forkserver.hpp"

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

}  // namespace

// --- the manager: the pool's result thread ------------------------------------------------
//
// One thread owns the workers. It starts the pool's fork server (so that the
// server, and through it every worker, dies with this thread: if the program
// dies, the workers die), asks it for workers, sends each its tasks over its
// own socket, reads the results, and learns from the server when a worker
// died: a worker that dies fails the task it was running and is replaced.
// Other threads only touch the queue, under the mutex, and wake the manager
// through an eventfd. No user code (a callback, a task's completion) ever
// runs while the mutex is held.
class PoolManager {
 public:
  PoolManager(int size, std::optional<Initializer> initializer) : size_(size) {
    config_.spin = spin_window();
    config_.initializer = std::move(initializer);
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
      require_running_locked();
      was_empty = queue_.empty();
      queue_.push_back(std::move(task));
    }
    // The manager takes the whole queue at once: one wake-up per batch will do.
    if (was_empty) wake();
  }

  void require_running() const {
    std::lock_guard lock(mutex_);
    require_running_locked();
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
    // A callback runs in the manager thread: joining there would wait for itself.
    if (std::this_thread::get_id() == thread_id_)
      throw UsageError("Pool.join() from a callback would wait forever: the callback runs in the pool's own thread");
    std::lock_guard join_lock(join_mutex_);
    if (thread_.joinable()) thread_.join();
  }

  std::size_t replaced() const { return replaced_.load(); }

  std::vector<pid_t> pids() const {
    std::lock_guard lock(mutex_);
    return pids_;
  }

  std::optional<pid_t> server_pid() const {
    std::lock_guard lock(mutex_);
    return server_pid_;
  }

 private:
  enum class State { running, closed, terminating };

  struct Worker {
    pid_t pid = -1;
    unique_fd channel;
    std::deque<ProcessTask> outstanding;  // sent, no result yet; the front one is running
    std::string in, out;                  // bytes received / still to send
    bool exit_sent = false;
    bool write_closed = false;  // the worker no longer reads; what it sent may still be read
    bool ready = false;         // its initializer finished (or there is none)
    std::optional<std::string> init_error;
    std::optional<std::string> malformed;  // it sent what no worker sends
  };

  void require_running_locked() const {
    if (broken_) throw BrokenPool(*broken_);
    if (state_ != State::running) throw UsageError("Pool not running");
  }

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
    SpawnedWorker spawned = server_->spawn();
    Worker w;
    w.pid = spawned.pid;
    w.channel = std::move(spawned.channel);
    w.ready = !config_.initializer;
    workers_.push_back(std::move(w));
    publish_pids();
  }

  void publish_pids() {
    std::lock_guard lock(mutex_);
    pids_.clear();
    for (auto& w : workers_) pids_.push_back(w.pid);
    server_pid_ = server_ ? std::optional(server_->pid()) : std::nullopt;
  }

  void run() {
    thread_id_ = std::this_thread::get_id();
    try {
      server_.emplace(config_);
      for (int i = 0; i < size_; ++i) spawn();
    } catch (...) {
      start_error_ = std::current_exception();
      stop_workers();
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
      // The pool can no longer run tasks: a worker could not be replaced, its
      // initializer failed, the fork server died, a system call failed.
      break_pool(describe(std::current_exception()));
    }
    stop_workers();
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
        stop_workers();
        fail_all<TaskError>("the pool was terminated");
        return;
      }
      if (server_->deaths_waiting()) handle_deaths();  // never hand a task to a worker known dead
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
        if (w.exit_sent || !w.channel || w.write_closed || !w.ready || w.outstanding.size() >= depth) continue;
        auto& task = pending_.front();
        std::string body;
        encode_ref(body, code_ref_cached(reinterpret_cast<std::uintptr_t>(task.trampoline)));
        encode_ref(body, code_ref_cached(task.fn));
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

  // A function's CodeRef, looked up once (dl_iterate_phdr walks every module).
  const CodeRef& code_ref_cached(std::uintptr_t address) {
    auto it = refs_.find(address);
    if (it == refs_.end()) it = refs_.emplace(address, code_ref(address)).first;
    return it->second;
  }

  // Sends what the socket takes now; the rest waits for POLLOUT.
  void flush(Worker& w) {
    while (!w.out.empty() && w.channel && !w.write_closed) {
      ssize_t n = ::send(w.channel.get(), w.out.data(), w.out.size(), MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
      if (n <= 0) {
        // The worker is gone (the server will say how). Keep the channel:
        // what it sent before dying is still there to be read.
        w.out.clear();
        w.write_closed = true;
        return;
      }
      w.out.erase(0, static_cast<std::size_t>(n));
    }
  }

  void wait_and_handle() {
    std::vector<pollfd> fds{{wake_.get(), POLLIN, 0}, {server_->fd(), POLLIN, 0}};
    for (auto& w : workers_) {
      short events = POLLIN;
      if (!w.out.empty()) events |= POLLOUT;
      fds.push_back({w.channel ? w.channel.get() : -1, events, 0});
    }
    // Poll without sleeping for the spin window first (clock.hpp); not at all
    // when the server already told of a death.
    const auto until = std::chrono::steady_clock::now() + config_.spin;
    int ready;
    while ((ready = ::poll(fds.data(), fds.size(), 0)) == 0 && std::chrono::steady_clock::now() < until)
      ::sched_yield();
    if (ready == 0 && !server_->deaths_waiting()) ready = ::poll(fds.data(), fds.size(), -1);
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
      auto& channel = fds[2 + i];
      if (channel.revents & (POLLIN | POLLHUP | POLLERR)) receive(workers_[i]);
      if (channel.revents & POLLOUT) flush(workers_[i]);
    }
    if (fds[1].revents || server_->deaths_waiting()) handle_deaths();
  }

  void handle_deaths() {
    for (const auto& death : server_->take_deaths()) {
      auto it = std::find_if(workers_.begin(), workers_.end(), [&](auto& w) { return w.pid == death.pid; });
      if (it != workers_.end()) bury(static_cast<std::size_t>(it - workers_.begin()), death.wait_status);
    }
  }

  void receive(Worker& w) {
    char buffer[64 * 1024];
    for (;;) {
      ssize_t n = ::recv(w.channel.get(), buffer, sizeof buffer, 0);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
      if (n <= 0) {
        w.channel.reset();  // closed: the worker is exiting; the server tells when
        break;
      }
      w.in.append(buffer, static_cast<std::size_t>(n));
    }
    while (!w.malformed) {
      if (w.in.size() >= sizeof(std::uint32_t) + sizeof(std::uint64_t)) {
        std::string_view head(w.in);
        auto kind = wire::decode<std::uint32_t>(head);
        auto size = wire::decode<std::uint64_t>(head);
        if (kind < kResult || kind > kReady || size > kMaxFrame) {
          // Not a worker's message (a task wrote into fd 3?): stop talking to
          // it; it dies of a closed socket, and its task fails.
          w.malformed = fmt::format("worker process {} sent a malformed message", w.pid);
          w.channel.reset();
          w.in.clear();
          break;
        }
      }
      auto frame = take_frame(w.in);
      if (!frame) break;
      auto& [kind, body] = *frame;
      if (kind == kInitFailed) {
        w.init_error = body;
        continue;
      }
      if (kind == kReady) {
        w.ready = true;
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

  // Forgets worker `i` (the server has reaped it), fails the task it was
  // running, puts its other tasks back at the head of the queue, and
  // replaces it when work remains. Throws, breaking the pool, when the
  // worker's initializer failed or no replacement can be started.
  void bury(std::size_t i, int wait_status) {
    Worker w = std::move(workers_[i]);
    workers_.erase(workers_.begin() + static_cast<std::ptrdiff_t>(i));
    if (w.channel) receive(w);  // an answer sent just before dying
    publish_pids();
    const std::string how = Process::describe_status(exitcode_from_status(wait_status));
    if (w.init_error || !w.ready) {
      // Respawning would fail the same way, forever: the pool cannot go on.
      for (auto it = w.outstanding.rbegin(); it != w.outstanding.rend(); ++it) pending_.push_front(std::move(*it));
      throw std::runtime_error("Pool initializer failed: " +
                               (w.init_error ? *w.init_error
                                             : fmt::format("worker process {} died in it ({})", w.pid, how)));
    }
    std::optional<ProcessTask> lost;  // the task it was running
    if (!w.outstanding.empty()) {
      lost = std::move(w.outstanding.front());
      w.outstanding.pop_front();
      for (auto it = w.outstanding.rbegin(); it != w.outstanding.rend(); ++it) pending_.push_front(std::move(*it));
    }
    bool needed;
    {
      std::lock_guard lock(mutex_);
      needed = state_ == State::running || !pending_.empty() || !queue_.empty();
    }
    // Replace it first, so that whoever learns of the loss finds the pool whole.
    std::exception_ptr replace_error;
    if (needed && !w.exit_sent && static_cast<int>(workers_.size()) < size_) {
      try {
        spawn();
        ++replaced_;
      } catch (...) {
        replace_error = std::current_exception();
      }
    }
    if (lost)
      lost->on_error(std::make_exception_ptr(WorkerLost(
          w.malformed ? *w.malformed + "; the task is lost"
                      : fmt::format("worker process {} died while running the task: {}", w.pid, how))));
    if (replace_error)
      throw std::runtime_error(fmt::format("worker process {} died ({}) and could not be replaced: {}", w.pid, how,
                                           describe(replace_error)));
  }

  // Kills every worker (the server does it when its socket closes) and reaps
  // the server; the tasks they held go back to pending_.
  void stop_workers() noexcept {
    server_.reset();
    for (auto& w : workers_)
      for (auto& t : w.outstanding) pending_.push_back(std::move(t));
    workers_.clear();
    publish_pids();
  }

  // The pool can run nothing more: every task submitted and not finished
  // fails with BrokenPool, and so does every later apply_async.
  void break_pool(const std::string& why) noexcept {
    std::string message = "the pool is broken: " + why;
    {
      std::lock_guard lock(mutex_);
      broken_ = message;
      if (state_ == State::running) state_ = State::closed;
    }
    stop_workers();
    fail_all<BrokenPool>(message);
  }

  // Fails every task not finished (queued, pending or held by a worker),
  // outside the lock: a task's error callback may call the pool. Each task
  // gets an exception of its own: copies of one would share its message
  // buffer (libstdc++ counts the references where TSan cannot see it).
  template <class Error>
  void fail_all(const std::string& message) noexcept {
    std::deque<ProcessTask> doomed;
    {
      std::lock_guard lock(mutex_);
      doomed.swap(queue_);
    }
    for (auto& w : workers_)
      for (auto& t : w.outstanding) pending_.push_back(std::move(t));
    for (auto& w : workers_) w.outstanding.clear();
    for (auto& t : pending_) doomed.push_back(std::move(t));
    pending_.clear();
    for (auto& t : doomed) t.on_error(std::make_exception_ptr(Error(message)));
  }

  const int size_;
  WorkerConfig config_;
  unique_fd wake_;
  std::thread thread_;
  std::thread::id thread_id_;
  std::mutex join_mutex_;

  mutable std::mutex mutex_;  // guards the members below, shared with other threads
  std::condition_variable started_cv_;
  bool started_ = false;
  std::exception_ptr start_error_;
  State state_ = State::running;
  std::deque<ProcessTask> queue_;
  std::optional<std::string> broken_;
  std::vector<pid_t> pids_;
  std::optional<pid_t> server_pid_;

  // The manager thread's own.
  std::optional<ForkServer> server_;
  std::vector<Worker> workers_;
  std::deque<ProcessTask> pending_;
  std::map<std::uintptr_t, CodeRef> refs_;
  std::atomic<std::size_t> replaced_{0};
};

}  // namespace detail

// --- Pool ---------------------------------------------------------------------------------

Pool::Pool(std::optional<int> processes, void (*initializer)())
    : Pool(InitTag{}, processes,
           initializer ? std::optional(detail::Initializer{&detail::call_task<void>,
                                                           reinterpret_cast<std::uintptr_t>(initializer),
                                                           wire::to_bytes(std::tuple<>{})})
                       : std::nullopt) {}

Pool::Pool(InitTag, std::optional<int> processes, std::optional<detail::Initializer> initializer)
    : processes_(detail::checked_size(processes)),
      manager_(std::make_unique<detail::PoolManager>(processes_, std::move(initializer))) {}

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
std::optional<pid_t> Pool::fork_server_pid() const { return manager_->server_pid(); }
void Pool::require_running() const { manager_->require_running(); }
void Pool::enqueue(detail::ProcessTask task) { manager_->enqueue(std::move(task)); }

// --- ThreadPool -----------------------------------------------------------------------------

ThreadPool::ThreadPool(std::optional<int> threads, std::function<void()> initializer)
    : initializer_(std::move(initializer)) {
  int n = threads.value_or(detail::default_size());
  if (n < 1) throw std::invalid_argument("Number of threads must be at least 1");
  threads_.reserve(static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) {
    Thread& thread = threads_.emplace_back([this] { worker_loop(); });
    thread.set_name(fmt::format("ThreadPool-worker-{}", i + 1));
    try {
      thread.start();
    } catch (const std::exception& e) {
      // The threads already started wait for work: end them before the
      // members they use go away, then say which thread could not start.
      threads_.pop_back();
      terminate();
      for (auto& t : threads_) t.join();
      throw std::runtime_error(fmt::format("ThreadPool: could not start thread {} of {}: {}", i + 1, n, e.what()));
    }
  }
}

ThreadPool::~ThreadPool() {
  close();
  join();
}

void ThreadPool::require_running() const {
  std::lock_guard lock(mutex_);
  require_running_locked();
}

void ThreadPool::require_running_locked() const {
  if (broken_) throw BrokenPool(*broken_);
  if (state_ != State::running) throw UsageError("Pool not running");
}

void ThreadPool::enqueue(std::function<void()> job, std::function<void(std::exception_ptr)> fail) {
  {
    std::lock_guard lock(mutex_);
    require_running_locked();
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
      std::string message = "the pool is broken: ThreadPool initializer failed: " + describe(std::current_exception(), true);
      std::deque<Job> dropped;
      {
        std::lock_guard lock(mutex_);
        if (!broken_) broken_ = message;
        state_ = State::terminated;
        dropped.swap(queue_);
      }
      has_work_.notify_all();
      for (auto& job : dropped) job.fail(std::make_exception_ptr(BrokenPool(message)));
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
