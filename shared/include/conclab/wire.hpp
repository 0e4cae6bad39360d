// wire.hpp — how task arguments and results cross the process boundary.
//
// conclab's Pool sends a task's arguments to a worker process and its result
// back as bytes. The encoding is this file, not pickle: portable values
// (conclab/portable.hpp: numbers, enums, FixedString<N>, arrays of them,
// structs that opt in) are copied byte for byte, std::string as a length and
// its characters, and std::vector, std::pair and std::tuple of encodable
// types element by element. Anything else does not compile, with a message
// that says why: a const char*, std::string_view, std::span or other pointer
// would arrive as an address into the sender's memory (a std::map, ...: not
// supported). Both ends are the same program (workers are forked by the
// pool's fork server, a fresh run of this very program), so sizes, byte
// order and layouts agree.
#pragma once

#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "conclab/portable.hpp"

namespace conclab::wire {

// What can be encoded: portable types, and these containers of encodable types.
template <class T>
inline constexpr bool encodable = Portable<T>;
template <>
inline constexpr bool encodable<std::string> = true;
template <class T>
inline constexpr bool encodable<std::vector<T>> = encodable<T>;
template <class A, class B>
inline constexpr bool encodable<std::pair<A, B>> = encodable<A>&& encodable<B>;
template <class... Ts>
inline constexpr bool encodable<std::tuple<Ts...>> = (encodable<Ts> && ...);

template <class T>
concept Encodable = encodable<T>;

// Every type that is not encodable ends up here.
template <class T>
struct Codec {
  static_assert(Encodable<T>,
                "conclab::wire: this type cannot be sent to another process (a Pool task's parameters and result "
                "must be portable, or std::string, std::vector, std::pair, std::tuple of encodable "
                "types); " CONCLAB_PORTABLE_RULE);
  static void encode(std::string&, const T&) {}  // no second error after the one above
  static T decode(std::string_view&);
};

template <class T>
void encode(std::string& out, const T& value) {
  Codec<T>::encode(out, value);
}

template <class T>
T decode(std::string_view& in) {
  return Codec<T>::decode(in);
}

// Takes n bytes from the front of `in`; a short message is an error, not UB.
inline std::string_view take(std::string_view& in, std::size_t n) {
  if (in.size() < n) throw std::runtime_error("wire: message truncated");
  auto head = in.substr(0, n);
  in.remove_prefix(n);
  return head;
}

template <class T>
requires Portable<T>
struct Codec<T> {
  static void encode(std::string& out, const T& value) { out.append(reinterpret_cast<const char*>(&value), sizeof(T)); }
  static T decode(std::string_view& in) {
    T value;
    std::memcpy(&value, take(in, sizeof(T)).data(), sizeof(T));
    return value;
  }
};

template <>
struct Codec<std::string> {
  static void encode(std::string& out, const std::string& s) {
    wire::encode<std::uint64_t>(out, s.size());
    out.append(s);
  }
  static std::string decode(std::string_view& in) {
    auto n = wire::decode<std::uint64_t>(in);
    return std::string(take(in, n));
  }
};

template <class T>
struct Codec<std::vector<T>> {
  static void encode(std::string& out, const std::vector<T>& v) {
    wire::encode<std::uint64_t>(out, v.size());
    for (const auto& x : v) wire::encode(out, x);
  }
  static std::vector<T> decode(std::string_view& in) {
    auto n = wire::decode<std::uint64_t>(in);
    if (n > in.size()) throw std::runtime_error("wire: message truncated");  // each element takes >= 1 byte
    std::vector<T> v;
    v.reserve(n);
    for (std::uint64_t i = 0; i < n; ++i) v.push_back(wire::decode<T>(in));
    return v;
  }
};

template <class... Ts>
struct Codec<std::tuple<Ts...>> {
  static void encode(std::string& out, const std::tuple<Ts...>& t) {
    std::apply([&](const auto&... x) { (wire::encode(out, x), ...); }, t);
  }
  static std::tuple<Ts...> decode(std::string_view& in) {
    return std::tuple<Ts...>{wire::decode<Ts>(in)...};  // braces: left to right
  }
};

template <class A, class B>
struct Codec<std::pair<A, B>> {
  static void encode(std::string& out, const std::pair<A, B>& p) {
    wire::encode(out, p.first);
    wire::encode(out, p.second);
  }
  static std::pair<A, B> decode(std::string_view& in) {
    A a = wire::decode<A>(in);
    return {std::move(a), wire::decode<B>(in)};
  }
};

// Whole-message helpers.
template <class T>
std::string to_bytes(const T& value) {
  std::string out;
  encode(out, value);
  return out;
}

template <class T>
T from_bytes(std::string_view bytes) {
  T value = decode<T>(bytes);
  if (!bytes.empty()) throw std::runtime_error("wire: trailing bytes after the message");
  return value;
}

}  // namespace conclab::wire
