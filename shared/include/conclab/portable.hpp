// portable.hpp — which values may cross the process boundary: live in shared
// memory (SharedArray, SharedDict) or travel to a Pool worker and back (wire.hpp).
//
// A value crosses as its bytes. For a number that is the value itself; for a
// pointer it is an address in the process that made it, which means nothing
// in another process (or something else). So conclab accepts, without being
// asked: arithmetic types, enums, FixedString<N>, and std::array or C arrays
// of these. A struct of such values opts in, once, beside its definition:
//
//   struct Point { int x, y; };
//   template <> inline constexpr bool conclab::portable<Point> = true;
//
// That line is your promise that no member is a pointer or holds one
// (const char*, std::string_view, std::span, std::string, ...): C++ cannot
// look inside a struct to check. The compiler does check that the struct is
// trivially copyable, and no opt-in makes a pointer or a view portable.
#pragma once

#include <fmt/format.h>

#include <array>
#include <cstddef>
#include <cstring>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>

namespace conclab {

// Opt-in for a struct of plain values (see above).
template <class T>
inline constexpr bool portable = false;

namespace detail {

template <class T>
inline constexpr bool is_view = false;  // a pointer with another name
template <class C, class Tr>
inline constexpr bool is_view<std::basic_string_view<C, Tr>> = true;
template <class T, std::size_t N>
inline constexpr bool is_view<std::span<T, N>> = true;

template <class T>
inline constexpr bool portable_without_opt_in = std::is_arithmetic_v<T> || std::is_enum_v<T>;

}  // namespace detail

template <class T>
concept Portable =
    !std::is_pointer_v<T> && !std::is_member_pointer_v<T> && !detail::is_view<std::remove_cv_t<T>> &&
    (detail::portable_without_opt_in<T> || (portable<std::remove_cv_t<T>> && std::is_trivially_copyable_v<T>));

namespace detail {
template <class T, std::size_t N>
inline constexpr bool portable_without_opt_in<T[N]> = Portable<T>;
template <class T, std::size_t N>
inline constexpr bool portable_without_opt_in<std::array<T, N>> = Portable<T>;
}  // namespace detail

// Why a type is refused: the tail of every refusal's message (a macro, since
// a static_assert message must be a string literal).
#define CONCLAB_PORTABLE_RULE                                                                         \
  "portable are numbers, enums, FixedString<N>, arrays of them, and trivially copyable structs "      \
  "marked `template <> inline constexpr bool conclab::portable<S> = true;`. A pointer, const char*, " \
  "std::string_view or std::span (or a struct holding one) would point into the memory of one "       \
  "process and mean nothing in another"

// A fixed-capacity string that can cross (a dict key, say): its characters
// are inside it, not behind a pointer. Constructing it from a longer string
// throws std::length_error.
template <std::size_t N>
class FixedString {
 public:
  FixedString() = default;
  FixedString(std::string_view text) {  // NOLINT: implicit, like std::string
    if (text.size() > N) throw std::length_error(fmt::format("'{}' is longer than {} characters", text, N));
    std::memcpy(data_, text.data(), text.size());
    size_ = static_cast<unsigned char>(text.size());
  }
  FixedString(const char* text) : FixedString(std::string_view(text)) {}  // NOLINT
  [[nodiscard]] std::string_view view() const { return {data_, size_}; }
  [[nodiscard]] std::string str() const { return std::string(view()); }
  friend bool operator==(const FixedString& a, const FixedString& b) { return a.view() == b.view(); }
  friend auto operator<=>(const FixedString& a, const FixedString& b) { return a.view() <=> b.view(); }

 private:
  static_assert(N < 256, "FixedString holds at most 255 characters");
  char data_[N] = {};
  unsigned char size_ = 0;
};

template <std::size_t N>
inline constexpr bool portable<FixedString<N>> = true;  // opts in like any struct of values

}  // namespace conclab
