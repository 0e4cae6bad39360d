#include <gtest/gtest.h>

#include <array>
#include <cstdint>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>
#include <vector>

#include "conclab/pool.hpp"
#include "conclab/portable.hpp"
#include "conclab/wire.hpp"

using conclab::FixedString;
using conclab::Portable;
using conclab::wire::Encodable;
using conclab::wire::from_bytes;
using conclab::wire::to_bytes;

namespace {
struct Point {
  int x, y;
  bool operator==(const Point&) const = default;
};
struct Unmarked {
  int x;
};
struct Named {  // opts in, but holds a std::string
  std::string name;
};
enum class Colour : std::uint8_t { red, green };

Point mirror(Point p) { return {-p.x, -p.y}; }
std::vector<Point> around(Point p, Colour c) {
  int step = c == Colour::red ? 1 : 2;
  return {{p.x - step, p.y}, {p.x + step, p.y}};
}
}  // namespace

template <>
inline constexpr bool conclab::portable<Point> = true;
template <>
inline constexpr bool conclab::portable<Named> = true;

// The rules of portable.hpp and wire.hpp, checked by the compiler. (That a
// refused type fails with its message is tests/compile_fail/.)
static_assert(Portable<int> && Portable<double> && Portable<bool> && Portable<Colour> && Portable<FixedString<8>>);
static_assert(Portable<std::array<FixedString<4>, 3>> && Portable<int[4]> && Portable<Point>);
static_assert(!Portable<const char*> && !Portable<int*> && !Portable<char* const> && !Portable<int Point::*>);
static_assert(!Portable<std::string_view> && !Portable<std::span<int>> && !Portable<std::array<int*, 2>>);
static_assert(!Portable<Unmarked> && !Portable<Named> && !Portable<std::string> && !Portable<std::pair<int, int>>);
static_assert(Encodable<std::string> && Encodable<std::vector<Point>> && Encodable<std::tuple<int, std::string>>);
static_assert(Encodable<std::pair<Colour, std::vector<FixedString<3>>>> && Encodable<std::array<int, 2>>);
static_assert(!Encodable<std::vector<const char*>> && !Encodable<std::pair<int, std::string_view>>);
static_assert(!Encodable<std::tuple<int, std::span<const int>>> && !Encodable<Unmarked>);

TEST(Wire, RoundTripsValuesStringsAndContainers) {
  using T = std::tuple<int, std::string, std::vector<std::pair<double, std::string>>>;
  T value{7, "hello", {{1.5, "a"}, {2.5, ""}}};
  EXPECT_EQ(from_bytes<T>(to_bytes(value)), value);
  auto bytes = to_bytes(std::string("abc"));
  EXPECT_THROW(from_bytes<std::string>(bytes.substr(0, bytes.size() - 1)), std::runtime_error);
  EXPECT_THROW(from_bytes<int>(bytes), std::runtime_error);  // trailing bytes
}

TEST(Wire, PortableValuesCrossByteForByte) {
  using T = std::tuple<Point, Colour, FixedString<8>, std::array<int, 3>, std::vector<Point>>;
  T value{{1, -2}, Colour::green, "eight ch", {4, 5, 6}, {{7, 8}, {9, 10}}};
  auto bytes = to_bytes(value);
  EXPECT_EQ(from_bytes<T>(bytes), value);
  EXPECT_EQ(to_bytes(Point{1, 2}).size(), sizeof(Point));
  EXPECT_THROW(from_bytes<Point>(std::string_view(bytes).substr(0, sizeof(Point) - 1)), std::runtime_error);
}

TEST(Wire, APoolTaskTakesAndReturnsAnOptedInStruct) {
  conclab::Pool pool(1);
  EXPECT_EQ(pool.apply(mirror, Point{3, -4}), (Point{-3, 4}));
  EXPECT_EQ(pool.apply(around, Point{0, 5}, Colour::green), (std::vector<Point>{{-2, 5}, {2, 5}}));
  EXPECT_EQ(pool.map(mirror, std::vector<Point>{{1, 1}, {2, 2}}), (std::vector<Point>{{-1, -1}, {-2, -2}}));
}
