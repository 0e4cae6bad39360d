// Opting in does not make a struct that holds a std::string portable: it is
// not trivially copyable (its characters are on one process's heap). Refused.
// expect: SharedArray<T>: T cannot be shared between processes
#include <string>

#include "conclab/shm.hpp"

struct Person {
  std::string name;
  int age;
};
template <>
inline constexpr bool conclab::portable<Person> = true;

void use() { conclab::SharedArray<Person> people(4); }
