// clock.hpp — a stopwatch on the monotonic clock, duration helpers, and the
// spin window of conclab's waits.
//
//   conclab::Stopwatch sw;
//   ...
//   fmt::print("elapsed {:.3f} s\n", sw.seconds());
#pragma once

#include <chrono>

namespace conclab {

using Clock = std::chrono::steady_clock;
using Seconds = std::chrono::duration<double>;

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
