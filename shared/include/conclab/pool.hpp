// pool.hpp — conclab's multiprocessing.Pool (worker processes) and
// multiprocessing.pool.ThreadPool (worker threads), with one surface:
//
//   conclab::Pool pool(5);                          // Pool(5)
//   int r = pool.apply(foo, 1);                     // pool.apply(Foo, (1,))
//   auto a = pool.apply_async(foo, 1);              // pool.apply_async(Foo, (1,))
//   a.get();                                        // .get()
//   pool.apply_async(foo, std::tuple{i}, bar);      // callback=Bar (error_callback: 4th argument)
//   pool.map(foo, items);  pool.imap(foo, items);  pool.imap_unordered(foo, items, 4);
//   pool.close(); pool.join();                      // or terminate()
//
// Pool (processes). Where the workers come from: a Pool never forks them
// from this process, which has threads (the pool's own result thread, and
// often the program's). After fork() only the forking thread exists in the
// child, and any lock another thread held at that moment — a mutex of the
// program, a lock inside a library — stays locked there forever: a worker
// would hang, alive, where no death watch can see it. (glibc's fork() resets
// its own malloc and stdio locks in the child, every FILE's included, even
// one held with flockfile(), though what they guarded may be half-updated;
// nobody resets the program's.) So the pool starts a fork server, as CPython's
// "forkserver" start method does: posix_spawn() runs this very program again
// (/proc/self/exe, a fresh image with one thread), and before main() conclab
// turns that copy into a server that forks the workers on request, hands the
// pool each worker's socket and reports each worker's death with its exit
// status. Every child keeps only 0, 1, 2 and its own socket (close_range),
// so no descriptor of the program leaks into a worker. Consequences:
//   - a task is a plain function or a lambda without captures: it is found in
//     the worker's copy of the program by its module and offset. Its
//     arguments and result are encoded by conclab/wire.hpp (portable types,
//     see conclab/portable.hpp, std::string, and vectors, pairs and tuples
//     of them; a pointer, const char*, std::string_view or std::span is
//     refused at compile time);
//   - a worker sees the program's globals as they are when the program starts
//     (the program's own global objects constructed; those of libraries
//     linked after libconclab may not be, so a task should not use them),
//     not as this process has changed them: pass what a task needs as
//     arguments, or set it in the initializer with initargs (Python's
//     Pool(n, initializer, initargs) works the same under the forkserver and
//     spawn start methods). A Pool cannot be made by a global object's
//     constructor (the server runs those too, and would make one of its own);
//   - the server is single-threaded only if nothing starts a thread before
//     main(): a global object of the program whose constructor starts a
//     thread (a logger's, a library's) runs in the server too, and then the
//     server forks workers from a threaded process after all, with the
//     hazard above. Start threads in main();
//   - starting a pool costs one exec of the program (a few milliseconds).
// Python's defects fixed:
//   - a worker that dies (SIGKILL, abort, _exit) fails the task it was
//     running with WorkerLost naming the exit status or signal, is replaced,
//     and the pool carries on; CPython's Pool hangs forever (gh-66587). Each
//     worker has its own channel, so the pool always knows which task a
//     worker was running;
//   - when the pool itself cannot go on (a worker cannot be replaced, the
//     initializer fails, the fork server dies), every unfinished task fails
//     with BrokenPool and so does every later apply_async: no get() waits
//     forever;
//   - an exception in a task comes back from get() as RemoteError carrying
//     "<type>: <message>";
//   - callbacks run in the pool's result thread with no lock of the pool
//     held, so a callback may submit tasks or close the pool; a callback that
//     throws is reported on stderr and the pool carries on (in CPython it
//     kills the result-handler thread).
// The destructor closes and joins: every task submitted runs to the end.
// CPython's `with Pool()` terminates instead, silently dropping work the
// program asked for; call terminate() when that is what you want.
//
// ThreadPool (threads). The same calls; a task may be any callable (lambdas
// with captures too) since it stays in this process, and get() rethrows the
// task's own exception.
#pragma once

#include <sys/types.h>

#include <algorithm>
#include <atomic>
#include <concepts>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <tuple>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "conclab/async_result.hpp"
#include "conclab/fd.hpp"
#include "conclab/threading.hpp"
#include "conclab/wire.hpp"

namespace conclab {

namespace detail {

// How a submitted task reports back: a value (or, for void, completion) or an error.
template <class R>
struct Completion {
  std::function<void(std::conditional_t<std::is_void_v<R>, std::monostate, R>&&)> value;
  std::function<void(std::exception_ptr)> error;
};

// The default chunk size of map(), as CPython's: about four chunks per worker.
inline std::size_t auto_chunksize(std::size_t items, int workers) {
  std::size_t per = items / (static_cast<std::size_t>(workers) * 4);
  return per * static_cast<std::size_t>(workers) * 4 < items ? per + 1 : std::max<std::size_t>(per, 1);
}

// Prints "Exception in callback: ..." for a callback that threw.
void report_callback_error(std::exception_ptr error) noexcept;

// The pool surface shared by Pool and ThreadPool. Derived provides
//   submit<R>(fn, std::tuple<Args...>, Completion<R>)
//   submit_chunk<R>(fn, std::vector<A>, Completion<std::vector<R>>)
// and require_running().
template <class Derived>
class PoolApi {
 public:
  // pool.apply(f, args...): runs f(args...) in a worker and waits for it.
  template <class F, class... Args>
    requires std::invocable<F, Args...>
  decltype(auto) apply(F fn, Args&&... args) {
    auto result = apply_async(fn, std::forward<Args>(args)...);
    if constexpr (std::is_void_v<std::invoke_result_t<F, Args...>>)
      result.get();
    else
      return std::invoke_result_t<F, Args...>(result.get());
  }

  // pool.apply_async(f, args...)
  template <class F, class... Args>
    requires std::invocable<F, Args...>
  auto apply_async(F fn, Args&&... args) {
    using R = std::invoke_result_t<F, Args...>;
    return apply_async_impl<R>(fn, std::make_tuple(std::forward<Args>(args)...), {}, {});
  }

  // pool.apply_async(f, (args...), callback, error_callback): callback(result)
  // or error_callback(error) runs in the pool's result thread when the task ends.
  template <class F, class... Args, class Callback,
            class R = decltype(std::apply(std::declval<F>(), std::declval<std::tuple<Args...>>()))>
    requires(!std::invocable<F, std::tuple<Args...>, Callback>)
  auto apply_async(F fn, std::tuple<Args...> args, Callback callback,
                   std::function<void(const std::exception&)> error_callback = {}) {
    return apply_async_impl<R>(fn, std::move(args), CallbackFor<R>(std::move(callback)), std::move(error_callback));
  }

  // pool.map(f, items, chunksize): the results in order; the first error is thrown.
  template <class F, class A>
  auto map(F fn, const std::vector<A>& items, std::size_t chunksize = 0) {
    return map_async(fn, items, chunksize).get();
  }

  template <class F, class A, class R = std::invoke_result_t<F, const A&>>
  AsyncResult<std::vector<R>> map_async(F fn, const std::vector<A>& items, std::size_t chunksize = 0) {
    self().require_running();
    auto state = std::make_shared<detail::ResultState<std::vector<R>>>();
    if (items.empty()) {
      state->set_value();
      return AsyncResult<std::vector<R>>(state);
    }
    if (chunksize == 0) chunksize = auto_chunksize(items.size(), self().size());
    struct Gather {
      std::mutex mutex;
      std::vector<std::optional<std::vector<R>>> parts;
      std::size_t left;
    };
    auto chunks = chunk(items, chunksize);
    auto gather = std::make_shared<Gather>();
    gather->parts.resize(chunks.size());
    gather->left = chunks.size();
    for (std::size_t i = 0; i < chunks.size(); ++i) {
      Completion<std::vector<R>> done{
          [state, gather, i](std::vector<R>&& part) {
            std::unique_lock lock(gather->mutex);
            gather->parts[i] = std::move(part);
            if (--gather->left > 0) return;
            std::vector<R> all;
            for (auto& p : gather->parts) std::move(p->begin(), p->end(), std::back_inserter(all));
            lock.unlock();
            state->set_value(std::move(all));
          },
          [state](std::exception_ptr e) { state->set_error(e); }};
      self().template submit_chunk<R>(fn, std::move(chunks[i]), std::move(done));
    }
    return AsyncResult<std::vector<R>>(state);
  }

  // pool.imap(f, items, chunksize=1): results in order, each as soon as it
  // and those before it are done.
  template <class F, class A, class R = std::invoke_result_t<F, const A&>>
  ResultStream<R> imap(F fn, const std::vector<A>& items, std::size_t chunksize = 1) {
    return stream<R>(fn, items, chunksize, true);
  }
  // pool.imap_unordered(f, items, chunksize=1): results as they finish.
  template <class F, class A, class R = std::invoke_result_t<F, const A&>>
  ResultStream<R> imap_unordered(F fn, const std::vector<A>& items, std::size_t chunksize = 1) {
    return stream<R>(fn, items, chunksize, false);
  }

 private:
  Derived& self() { return static_cast<Derived&>(*this); }

  template <class R>
  struct CallbackType {
    using type = std::function<void(const R&)>;
  };
  template <class R>
    requires std::is_void_v<R>
  struct CallbackType<R> {
    using type = std::function<void()>;
  };
  template <class R>
  using CallbackFor = typename CallbackType<R>::type;

  template <class R, class F, class Tuple>
  AsyncResult<R> apply_async_impl(F fn, Tuple args, CallbackFor<R> callback,
                                  std::function<void(const std::exception&)> error_callback) {
    self().require_running();
    auto state = std::make_shared<detail::ResultState<R>>();
    Completion<R> done{[state, callback](auto&& value) {
                         if constexpr (std::is_void_v<R>) {
                           state->set_value();
                           if (callback) run_callback([&] { callback(); });
                         } else {
                           state->set_value(std::move(value));
                           if (callback) run_callback([&] { callback(*state->slot().value); });
                         }
                       },
                       [state, error_callback](std::exception_ptr e) {
                         state->set_error(e);
                         if (error_callback) run_callback([&] { rethrow_to(e, error_callback); });
                       }};
    self().template submit<R>(fn, std::move(args), std::move(done));
    return AsyncResult<R>(state);
  }

  template <class F>
  static void run_callback(F f) noexcept {
    try {
      f();
    } catch (...) {
      report_callback_error(std::current_exception());
    }
  }

  static void rethrow_to(std::exception_ptr e, const std::function<void(const std::exception&)>& handler) {
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& ex) {
      handler(ex);
    } catch (...) {
      handler(TaskError("unknown exception"));
    }
  }

  template <class A>
  static std::vector<std::vector<A>> chunk(const std::vector<A>& items, std::size_t chunksize) {
    std::vector<std::vector<A>> chunks;
    for (std::size_t i = 0; i < items.size(); i += chunksize)
      chunks.emplace_back(items.begin() + static_cast<std::ptrdiff_t>(i),
                          items.begin() + static_cast<std::ptrdiff_t>(std::min(items.size(), i + chunksize)));
    return chunks;
  }

  template <class R, class F, class A>
  ResultStream<R> stream(F fn, const std::vector<A>& items, std::size_t chunksize, bool ordered) {
    self().require_running();
    if (chunksize == 0) throw std::invalid_argument("chunksize must be at least 1");
    auto state = std::make_shared<typename ResultStream<R>::State>();
    auto chunks = chunk(items, chunksize);
    state->ordered = ordered;
    state->chunks = chunks.size();
    for (std::size_t i = 0; i < chunks.size(); ++i) {
      Completion<std::vector<R>> done{
          [state, i](std::vector<R>&& part) { state->complete(i, std::move(part), nullptr); },
          [state, i](std::exception_ptr e) { state->complete(i, {}, e); }};
      self().template submit_chunk<R>(fn, std::move(chunks[i]), std::move(done));
    }
    return ResultStream<R>(state);
  }
};


// --- Pool: worker processes ------------------------------------------------------------

// The worker side of a task: decode the arguments, call, encode the result.
using Trampoline = std::string (*)(std::uintptr_t fn, std::string_view args);

template <class R, class... P>
std::string call_task(std::uintptr_t fn, std::string_view args) {
  auto f = reinterpret_cast<R (*)(P...)>(fn);
  auto params = wire::from_bytes<std::tuple<std::decay_t<P>...>>(args);
  if constexpr (std::is_void_v<R>) {
    std::apply(f, std::move(params));
    return {};
  } else {
    return wire::to_bytes(std::apply(f, std::move(params)));
  }
}

template <class R, class P>
std::string call_chunk(std::uintptr_t fn, std::string_view args) {
  auto f = reinterpret_cast<R (*)(P)>(fn);
  auto items = wire::from_bytes<std::vector<std::decay_t<P>>>(args);
  std::vector<R> out;
  out.reserve(items.size());
  for (auto& x : items) out.push_back(f(std::move(x)));
  return wire::to_bytes(out);
}

// A task on its way to a worker process, and what to do with the answer.
struct ProcessTask {
  Trampoline trampoline;
  std::uintptr_t fn;
  std::string args;
  std::function<void(std::string_view)> on_value;
  std::function<void(std::exception_ptr)> on_error;
};

// A Pool's initializer and its encoded arguments, run once in each worker.
struct Initializer {
  Trampoline trampoline;
  std::uintptr_t fn;
  std::string args;
};

// A plain function, or a lambda without captures (unary + gives its pointer).
template <class F>
concept PlainFunction = requires(F f) {
  requires std::is_pointer_v<decltype(+f)>;
  requires std::is_function_v<std::remove_pointer_t<decltype(+f)>>;
};

class PoolManager;  // the pool's result thread and its workers (src/pool.cpp)

}  // namespace detail

class Pool : public detail::PoolApi<Pool> {
 public:
  // Pool(processes, initializer): `processes` workers (default: one per CPU);
  // `initializer` runs once in each new worker. Throws std::invalid_argument
  // for fewer than one process, as Python raises ValueError, and
  // std::system_error when the fork server or a worker cannot be started.
  explicit Pool(std::optional<int> processes = std::nullopt, void (*initializer)() = nullptr);
  // Pool(processes, initializer, initargs...): Python's initargs. The
  // arguments are encoded like a task's (wire.hpp).
  template <class... P, class... A>
    requires(sizeof...(P) > 0 && sizeof...(P) == sizeof...(A))
  Pool(std::optional<int> processes, void (*initializer)(P...), A&&... initargs)
      : Pool(InitTag{}, processes,
             detail::Initializer{&detail::call_task<void, P...>, reinterpret_cast<std::uintptr_t>(initializer),
                                 wire::to_bytes(std::tuple<std::decay_t<P>...>(std::forward<A>(initargs)...))}) {}
  ~Pool();
  Pool(const Pool&) = delete;
  Pool& operator=(const Pool&) = delete;

  // No new tasks; the workers exit once the submitted ones are done.
  void close();
  // Kills the workers now; tasks not yet finished fail with TaskError.
  void terminate();
  // Waits for the workers to exit. UsageError before close() or terminate(),
  // or from a callback (it runs in the pool's own thread: it would wait forever).
  void join();

  [[nodiscard]] int size() const { return processes_; }
  // How many workers died and were replaced so far.
  [[nodiscard]] std::size_t workers_replaced() const;
  // The pids of the live workers (to watch them, or kill one in a lab).
  [[nodiscard]] std::vector<pid_t> worker_pids() const;
  // The pid of the fork server the workers come from, while it runs.
  [[nodiscard]] std::optional<pid_t> fork_server_pid() const;

  // The primitives PoolApi builds on.
  template <class R, class F, class... A>
  void submit(F fn, std::tuple<A...> args, detail::Completion<R> done) {
    static_assert(detail::PlainFunction<F>,
                  "a Pool task must be a plain function or a lambda without captures: it runs in a worker process");
    submit_fp<R>(+fn, std::move(args), std::move(done));
  }
  template <class R, class F, class A>
  void submit_chunk(F fn, std::vector<A> items, detail::Completion<std::vector<R>> done) {
    static_assert(detail::PlainFunction<F>,
                  "a Pool task must be a plain function or a lambda without captures: it runs in a worker process");
    submit_chunk_fp<R>(+fn, std::move(items), std::move(done));
  }
  void require_running() const;

 private:
  struct InitTag {};
  Pool(InitTag, std::optional<int> processes, std::optional<detail::Initializer> initializer);

  template <class R, class FR, class... P, class... A>
  void submit_fp(FR (*fp)(P...), std::tuple<A...> args, detail::Completion<R> done) {
    using Params = std::tuple<std::decay_t<P>...>;
    enqueue({&detail::call_task<FR, P...>, reinterpret_cast<std::uintptr_t>(fp),
             wire::to_bytes(std::make_from_tuple<Params>(std::move(args))),
             [value = std::move(done.value)](std::string_view bytes) {
               if constexpr (std::is_void_v<R>)
                 value(std::monostate{});
               else
                 value(wire::from_bytes<R>(bytes));
             },
             std::move(done.error)});
  }
  template <class R, class FR, class P, class A>
  void submit_chunk_fp(FR (*fp)(P), std::vector<A> items, detail::Completion<std::vector<R>> done) {
    std::vector<std::decay_t<P>> params(std::make_move_iterator(items.begin()), std::make_move_iterator(items.end()));
    enqueue({&detail::call_chunk<FR, P>, reinterpret_cast<std::uintptr_t>(fp), wire::to_bytes(params),
             [value = std::move(done.value)](std::string_view bytes) {
               value(wire::from_bytes<std::vector<R>>(bytes));
             },
             std::move(done.error)});
  }
  void enqueue(detail::ProcessTask task);

  int processes_;
  std::unique_ptr<detail::PoolManager> manager_;
};

// --- ThreadPool: worker threads --------------------------------------------------------

class ThreadPool : public detail::PoolApi<ThreadPool> {
 public:
  explicit ThreadPool(std::optional<int> threads = std::nullopt, std::function<void()> initializer = {});
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  void close();
  // Tasks not yet started fail with TaskError; running ones finish (a thread
  // cannot be killed).
  void terminate();
  void join();
  [[nodiscard]] int size() const { return static_cast<int>(threads_.size()); }

  template <class R, class F, class... A>
  void submit(F fn, std::tuple<A...> args, detail::Completion<R> done) {
    auto fail = done.error;
    enqueue([fn = std::move(fn), args = std::move(args), done = std::move(done)]() mutable {
      run_and_complete<R>(done, [&] { return std::apply(fn, std::move(args)); });
    }, std::move(fail));
  }
  template <class R, class F, class A>
  void submit_chunk(F fn, std::vector<A> items, detail::Completion<std::vector<R>> done) {
    auto fail = done.error;
    enqueue([fn = std::move(fn), items = std::move(items), done = std::move(done)]() mutable {
      run_and_complete<std::vector<R>>(done, [&] {
        std::vector<R> out;
        out.reserve(items.size());
        for (const auto& x : items) out.push_back(fn(x));
        return out;
      });
    }, std::move(fail));
  }
  void require_running() const;

 private:
  template <class R, class Call>
  static void run_and_complete(detail::Completion<R>& done, Call call) {
    std::exception_ptr error;
    try {
      if constexpr (std::is_void_v<R>) {
        call();
      } else {
        auto value = call();
        done.value(std::move(value));
        return;
      }
    } catch (...) {
      error = std::current_exception();
    }
    if (error)
      done.error(error);
    else if constexpr (std::is_void_v<R>)
      done.value(std::monostate{});
  }
  void enqueue(std::function<void()> job, std::function<void(std::exception_ptr)> fail);
  void require_running_locked() const;
  void worker_loop();

  struct Job {
    std::function<void()> run;
    std::function<void(std::exception_ptr)> fail;
  };
  enum class State { running, closed, terminated };
  mutable std::mutex mutex_;
  std::condition_variable has_work_;
  std::deque<Job> queue_;
  State state_ = State::running;
  std::optional<std::string> broken_;  // the initializer failed
  std::function<void()> initializer_;
  std::vector<Thread> threads_;
  std::once_flag joined_;
};

}  // namespace conclab
