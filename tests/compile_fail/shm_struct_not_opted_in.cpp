// A struct must opt in (conclab::portable<Point> = true): the compiler cannot
// see whether its members are values or pointers. Refused until it does.
// expect: SharedArray<T>: T cannot be shared between processes
#include "conclab/shm.hpp"

struct Point {
  int x, y;
};

void use() { conclab::SharedArray<Point> points(4); }
