// shm.hpp — memory that forked processes really share: conclab's
// multiprocessing.Array (SharedArray) and Manager().dict() (SharedDict).
//
//   conclab::SharedArray<int> temp{11, 22, 33, 44};   // Array('i', [11, 22, 33, 44])
//   conclab::Process p([&] { temp[0] = 100; });        // the child writes...
//   p.start(); p.join();                                // ...the parent sees 100
//
// Both live in a named Boost.Interprocess managed segment that the parent
// creates, maps and *unlinks at once*: the mapping stays, inherited by every
// child forked afterwards, but the name is gone from /dev/shm before anyone
// can crash. So nothing is ever left behind, even when the owner is killed
// with SIGKILL (CPython's SharedMemory can leak its segment, or a child can
// remove it too early: gh-82300). The memory goes when the last process
// that maps it exits. Consequence: only the creating process and children it
// forks afterwards can share it; unrelated processes cannot open it by name.
//
// Elements, keys and values must be trivially copyable (integers, doubles,
// structs of them, FixedString<N>): a std::string would point into one
// process's heap. The locks are robust process-shared mutexes: a child that
// dies while holding one does not hang the others.
#pragma once

#include <pthread.h>

#include <boost/interprocess/allocators/allocator.hpp>
#include <boost/interprocess/containers/map.hpp>
#include <boost/interprocess/managed_shared_memory.hpp>
#include <algorithm>
#include <compare>
#include <cstddef>
#include <cstring>
#include <functional>
#include <initializer_list>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include <fmt/format.h>

namespace conclab {

template <class T>
concept Shareable = std::is_trivially_copyable_v<T>;

// A lock that works across processes (Array.get_lock() in Python). Robust: if
// the process holding it dies, the next lock() takes it over instead of
// waiting forever, and owner_died() tells that the protected data may be
// half-updated. Lives inside the shared segment; use it with std::lock_guard.
class ProcessLock {
 public:
  ProcessLock();
  ~ProcessLock();
  ProcessLock(const ProcessLock&) = delete;
  ProcessLock& operator=(const ProcessLock&) = delete;

  void lock();
  bool try_lock();
  void unlock();
  // True when a lock() found the previous holder dead since the last call.
  bool owner_died() noexcept { return std::exchange(owner_died_, false); }

 private:
  void after_lock(int rc, const char* call);
  pthread_mutex_t mutex_;
  bool owner_died_ = false;
};

// A fixed-capacity string that can live in shared memory (a dict key, say).
// Constructing it from a longer string throws std::length_error.
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

namespace detail {

// The segment behind SharedArray and SharedDict: created under `name` (a
// unique one when empty), mapped, and its name removed at once.
class Segment {
 public:
  Segment(std::string name, std::size_t bytes);
  Segment(Segment&&) noexcept = default;
  Segment& operator=(Segment&&) noexcept = default;
  [[nodiscard]] const std::string& name() const { return name_; }
  boost::interprocess::managed_shared_memory& memory() { return memory_; }

 private:
  std::string name_;
  boost::interprocess::managed_shared_memory memory_;
};

// "prefix: index I out of range [0, N)"
[[noreturn]] void throw_index_error(std::size_t index, std::size_t size);

}  // namespace detail

// multiprocessing.Array: a fixed number of T in shared memory, with a lock.
// Each element access is one plain load or store; take get_lock() around a
// read-modify-write (temp[0] += 1), as in Python.
template <Shareable T>
class SharedArray {
 public:
  // Array('i', [11, 22, 33, 44])
  SharedArray(std::initializer_list<T> values, std::string name = {})
      : SharedArray(values.size(), T{}, std::move(name)) {
    std::copy(values.begin(), values.end(), data_);
  }
  // Array('i', n): n copies of `value`.
  explicit SharedArray(std::size_t size, T value = T{}, std::string name = {})
      : segment_(std::move(name), size * sizeof(T) + sizeof(ProcessLock) + kOverhead), size_(size) {
    if (size == 0) throw std::invalid_argument("SharedArray needs at least one element");
    auto& memory = segment_.memory();
    lock_ = memory.construct<ProcessLock>("lock")();
    data_ = memory.construct<T>("data")[size](value);
  }

  [[nodiscard]] std::size_t size() const { return size_; }
  // Checked like Python's: an index outside [0, size) throws std::out_of_range.
  T& operator[](std::size_t i) {
    if (i >= size_) detail::throw_index_error(i, size_);
    return data_[i];
  }
  const T& operator[](std::size_t i) const {
    if (i >= size_) detail::throw_index_error(i, size_);
    return data_[i];
  }
  T* begin() { return data_; }
  T* end() { return data_ + size_; }
  const T* begin() const { return data_; }
  const T* end() const { return data_ + size_; }
  // A copy of the contents, taken under the lock.
  [[nodiscard]] std::vector<T> snapshot() {
    std::lock_guard guard(*lock_);
    return {begin(), end()};
  }

  ProcessLock& get_lock() { return *lock_; }
  [[nodiscard]] const std::string& name() const { return segment_.name(); }

 private:
  static constexpr std::size_t kOverhead = 4096;
  detail::Segment segment_;
  std::size_t size_;
  ProcessLock* lock_ = nullptr;
  T* data_ = nullptr;
};

// Manager().dict(): a map from K to V in shared memory, every operation
// under one lock. Holds at most `capacity` entries; set() of a new key when
// full throws std::length_error. (Python's Manager runs a server process and
// sends every operation over a socket; here a forked child just writes.)
template <Shareable K, Shareable V>
  requires std::totally_ordered<K>
class SharedDict {
  using Pair = std::pair<const K, V>;
  using Allocator = boost::interprocess::allocator<Pair, boost::interprocess::managed_shared_memory::segment_manager>;
  using Map = boost::interprocess::map<K, V, std::less<K>, Allocator>;

 public:
  explicit SharedDict(std::size_t capacity = 1024, std::string name = {})
      : segment_(std::move(name), bytes_for(capacity)), capacity_(capacity) {
    if (capacity == 0) throw std::invalid_argument("SharedDict needs a capacity of at least one entry");
    auto& memory = segment_.memory();
    lock_ = memory.construct<ProcessLock>("lock")();
    map_ = memory.construct<Map>("map")(std::less<K>(), Allocator(memory.get_segment_manager()));
  }

  // dic[key] = value
  void set(const K& key, const V& value) {
    std::lock_guard guard(*lock_);
    auto it = map_->find(key);
    if (it != map_->end()) {
      it->second = value;
      return;
    }
    if (map_->size() >= capacity_)
      throw std::length_error(fmt::format("SharedDict is full: capacity {} entries", capacity_));
    map_->emplace(key, value);
  }
  // dic.get(key)
  [[nodiscard]] std::optional<V> get(const K& key) const {
    std::lock_guard guard(*lock_);
    auto it = map_->find(key);
    if (it == map_->end()) return std::nullopt;
    return it->second;
  }
  // dic[key]: throws std::out_of_range (Python's KeyError) for a missing key.
  [[nodiscard]] V at(const K& key) const {
    if (auto v = get(key)) return *v;
    throw std::out_of_range("SharedDict: key not found");
  }
  [[nodiscard]] bool contains(const K& key) const { return get(key).has_value(); }
  // del dic[key]; returns whether it was there.
  bool erase(const K& key) {
    std::lock_guard guard(*lock_);
    return map_->erase(key) > 0;
  }
  [[nodiscard]] std::size_t size() const {
    std::lock_guard guard(*lock_);
    return map_->size();
  }
  [[nodiscard]] std::size_t capacity() const { return capacity_; }
  // keys(), values(), items(): copies taken under the lock, in key order.
  [[nodiscard]] std::vector<K> keys() const {
    return collect([](const Pair& p) { return p.first; });
  }
  [[nodiscard]] std::vector<V> values() const {
    return collect([](const Pair& p) { return p.second; });
  }
  [[nodiscard]] std::vector<std::pair<K, V>> items() const {
    return collect([](const Pair& p) { return std::pair<K, V>(p.first, p.second); });
  }

  [[nodiscard]] const std::string& name() const { return segment_.name(); }

 private:
  // Room for `capacity` tree nodes (a node carries three pointers and a
  // colour besides the pair), allocator bookkeeping, and the lock.
  static std::size_t bytes_for(std::size_t capacity) {
    return capacity * (sizeof(Pair) + 64) * 2 + 16384;
  }
  template <class F>
  auto collect(F f) const {
    std::lock_guard guard(*lock_);
    std::vector<std::invoke_result_t<F, const Pair&>> out;
    out.reserve(map_->size());
    for (const auto& p : *map_) out.push_back(f(p));
    return out;
  }

  detail::Segment segment_;
  std::size_t capacity_;
  ProcessLock* lock_ = nullptr;
  Map* map_ = nullptr;
};

}  // namespace conclab
