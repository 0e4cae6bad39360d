// The fan-out protocol (fanout.hpp).
#include "conclab/fanout.hpp"

#include <charconv>
#include <stdexcept>

namespace conclab::fanout {

std::string request(int bytes) { return std::to_string(bytes) + "\n"; }

std::optional<int> parse_count(std::string_view line, int max_bytes) {
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  if (line.empty() || line.size() + 1 > kMaxRequestLine || line.front() < '1' || line.front() > '9')
    return std::nullopt;
  int count = 0;
  auto [end, err] = std::from_chars(line.data(), line.data() + line.size(), count);
  if (err != std::errc() || end != line.data() + line.size() || count < 1 || count > max_bytes) return std::nullopt;
  return count;
}

std::string_view reply(int bytes) {
  // "0123456789abcdef" over and over: the same bytes on every run.
  static const std::string pattern = [] {
    std::string text(static_cast<std::size_t>(kLargestMaxBytes), '\0');
    for (std::size_t i = 0; i < text.size(); ++i) text[i] = "0123456789abcdef"[i % 16];
    return text;
  }();
  if (bytes < 0 || bytes > kLargestMaxBytes) throw std::out_of_range("fanout::reply: no such count");
  return std::string_view(pattern).substr(0, static_cast<std::size_t>(bytes));
}

}  // namespace conclab::fanout
