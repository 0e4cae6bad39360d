// No opt-in makes a view portable: std::string_view stays refused even
// when someone marks it.
// expect: conclab::wire: this type cannot be sent to another process
#include <string_view>
#include <utility>

#include "conclab/wire.hpp"

template <>
inline constexpr bool conclab::portable<std::string_view> = true;

void use() { (void)conclab::wire::to_bytes(std::pair<int, std::string_view>(1, "one")); }
