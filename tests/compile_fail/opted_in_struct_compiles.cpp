// The control case, which must compile: a struct of plain values that opts
// in crosses everywhere (SharedArray, SharedDict, a Pool task's parameter and
// result, wire), as do FixedString, enums and arrays without opting in.
#include <array>
#include <string>
#include <tuple>
#include <vector>

#include "conclab/pool.hpp"
#include "conclab/shm.hpp"
#include "conclab/wire.hpp"

struct Point {
  int x, y;
};
template <>
inline constexpr bool conclab::portable<Point> = true;

enum class Colour { red, green };

std::vector<Point> around(Point p, Colour) { return {{p.x - 1, p.y}, {p.x + 1, p.y}}; }

void use(conclab::Pool& pool) {
  conclab::SharedArray<Point> points(4);
  conclab::SharedArray<std::array<double, 3>> vectors(2);
  conclab::SharedDict<conclab::FixedString<8>, Point> places;
  places.set("home", points[0]);
  (void)pool.apply(around, Point{1, 2}, Colour::red);
  (void)conclab::wire::to_bytes(std::tuple<Point, std::string, std::vector<Colour>>{});
}
