// clock.hpp — a stopwatch on the monotonic clock, duration helpers, and the
// spin window of conclab's waits.
//
//   conclab::Stopwatch sw;
//   ...
//   fmt::print("elapsed {:.3f} s\n", sw.seconds());
#pragma once

#include <chrono>
#include <optional>

namespace conclab {

using Clock = std::chrono::steady_clock;
using Seconds = std::chrono::duration<double>;

// Timeouts never overflow. Every `wait at most timeout` of conclab (Thread,
// RLock, Process::join, AsyncResult, ResultStream) goes through these two:
// zero or negative means "poll", and one too large for a deadline
// (hours::max()) means "wait as long as it takes", never "already expired".
namespace detail {
// `timeout` as nanoseconds without overflow: zero, negative (or NaN) gives 0,
// a poll; anything at or beyond nanoseconds::max() (hours::max(),
// seconds(LLONG_MAX), 1e300 s) gives nanoseconds::max(), "no deadline".
template <class Rep, class Period>
std::chrono::nanoseconds saturating_ns(std::chrono::duration<Rep, Period> timeout) {
  const long double ns = std::chrono::duration<long double, std::nano>(timeout).count();
  if (!(ns > 0)) return std::chrono::nanoseconds::zero();
  if (ns >= static_cast<long double>(std::chrono::nanoseconds::max().count())) return std::chrono::nanoseconds::max();
  return std::chrono::nanoseconds(static_cast<std::chrono::nanoseconds::rep>(ns));
}

// The Clock deadline `timeout` from now, or nullopt ("no deadline") when
// `timeout` is nanoseconds::max() or the deadline lies beyond what Clock can
// represent (some 292 years after boot).
inline std::optional<Clock::time_point> deadline_after(std::chrono::nanoseconds timeout) {
  const auto now = Clock::now();
  if (timeout == std::chrono::nanoseconds::max() || timeout > Clock::time_point::max() - now) return std::nullopt;
  return now + std::chrono::duration_cast<Clock::duration>(timeout);
}
// The same for any duration.
template <class Rep, class Period>
std::optional<Clock::time_point> deadline_after(std::chrono::duration<Rep, Period> timeout) {
  return deadline_after(saturating_ns(timeout));
}
}  // namespace detail

// Any std::chrono duration as floating-point seconds.
template <class Rep, class Period>
constexpr double to_seconds(std::chrono::duration<Rep, Period> d) {
  return std::chrono::duration_cast<Seconds>(d).count();
}

// The spin window: how long conclab looks again and again, without sleeping,
// for what it waits on (a child's exit in Process::join, a task in a pool
// worker, a result in the pool's result thread) before it sleeps in the
// kernel. On a virtual machine, waking a sleeping CPU costs tens of
// microseconds, so a short wait is answered sooner; the price is CPU time
// burnt while spinning (it shows in cpu_s). 50 us by default; zero turns
// spinning off. `micro/.../spin:off` rows of conclab-bench show the trade.
// A Pool reads it when it starts its workers.
[[nodiscard]] std::chrono::microseconds spin_window() noexcept;
void set_spin_window(std::chrono::microseconds window) noexcept;

class Stopwatch {
 public:
  Stopwatch() noexcept : start_(Clock::now()) {}
  void restart() noexcept { start_ = Clock::now(); }
  [[nodiscard]] Clock::duration elapsed() const noexcept { return Clock::now() - start_; }
  [[nodiscard]] double seconds() const noexcept { return to_seconds(elapsed()); }

 private:
  Clock::time_point start_;
};

}  // namespace conclab
