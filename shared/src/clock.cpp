#include "conclab/clock.hpp"

#include <atomic>

namespace conclab {

namespace {
std::atomic<long long> spin_us{50};
}

std::chrono::microseconds spin_window() noexcept { return std::chrono::microseconds(spin_us.load()); }

void set_spin_window(std::chrono::microseconds window) noexcept { spin_us.store(window.count() < 0 ? 0 : window.count()); }

}  // namespace conclab
