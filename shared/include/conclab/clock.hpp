// clock.hpp — a stopwatch on the monotonic clock, and duration helpers.
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
