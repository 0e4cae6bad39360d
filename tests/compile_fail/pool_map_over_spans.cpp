// pool.map over std::span items: each span points at the parent's elements.
// Refused (send std::vector<int> items).
// expect: conclab::wire: this type cannot be sent to another process
#include <span>
#include <vector>

#include "conclab/pool.hpp"

int sum(std::span<const int> xs) {
  int total = 0;
  for (int x : xs) total += x;
  return total;
}

void use(conclab::Pool& pool, const std::vector<int>& row) {
  (void)pool.map(sum, std::vector<std::span<const int>>{std::span<const int>(row)});
}
