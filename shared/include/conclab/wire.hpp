// wire.hpp — how task arguments and results cross the process boundary.
//
// conclab's Pool sends a task's arguments to a worker process and its result
// back as bytes. The encoding is this file, not pickle: trivially copyable
// values are copied byte for byte (integers, doubles, plain structs, arrays
// of them), std::string as a length and its characters, and std::vector,
// std::pair and std::tuple of encodable types element by element. Anything
// with pointers inside that is not listed (a raw pointer, a std::map, ...)
// does not compile. Both ends are the same program (workers are forked), so
// sizes, byte order and layouts agree.
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

namespace conclab::wire {

template <class T>
struct Codec;

template <class T>
concept Encodable = requires(std::string& out, std::string_view& in, const T& value) {
  Codec<T>::encode(out, value);
  { Codec<T>::decode(in) } -> std::same_as<T>;
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
  requires std::is_trivially_copyable_v<T>
struct Codec<T> {
  static void encode(std::string& out, const T& value) {
    out.append(reinterpret_cast<const char*>(&value), sizeof(T));
  }
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
  requires(!std::is_trivially_copyable_v<std::tuple<Ts...>>)
struct Codec<std::tuple<Ts...>> {
  static void encode(std::string& out, const std::tuple<Ts...>& t) {
    std::apply([&](const auto&... x) { (wire::encode(out, x), ...); }, t);
  }
  static std::tuple<Ts...> decode(std::string_view& in) {
    return std::tuple<Ts...>{wire::decode<Ts>(in)...};  // braces: left to right
  }
};

template <class A, class B>
  requires(!std::is_trivially_copyable_v<std::pair<A, B>>)
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
