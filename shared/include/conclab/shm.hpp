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
// Elements, keys and values must be portable (conclab/portable.hpp):
// numbers, enums, FixedString<N>, arrays of them, structs of them that opt
// in. A std::string or a const char* would point into one process's memory,
// so they do not compile. The locks are robust process-shared mutexes: a
// child that dies while holding one does not hang the others.
#pragma once

#include <fmt/format.h>
#include <pthread.h>

#include <algorithm>
#include <atomic>
#include <boost/interprocess/managed_shared_memory.hpp>
#include <concepts>
#include <cstddef>
#include <cstring>
#include <initializer_list>
#include <limits>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "conclab/portable.hpp"

namespace conclab {

// A lock that works across processes (Array.get_lock() in Python). Robust: if
// the process holding it dies, the next lock() takes it over instead of
// waiting forever, and owner_died() tells that the protected data may be
// half-updated. Lives inside the shared segment; use it with std::lock_guard.
// The lock itself repairs nothing: what the dead holder was changing is as
// it left it. (SharedDict repairs itself; see there.)
class ProcessLock {
 public:
  ProcessLock();
  ~ProcessLock();
  ProcessLock(const ProcessLock&) = delete;
  ProcessLock& operator=(const ProcessLock&) = delete;

  void lock();
  bool try_lock();
  void unlock();
  // True, once, after a lock() or try_lock() took the lock over from a holder
  // that died holding it; ask while you hold the lock.
  bool owner_died() noexcept { return std::exchange(owner_died_, false); }

 private:
  void after_lock(int rc, const char* call);
  pthread_mutex_t mutex_;
  bool owner_died_ = false;
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

// "SharedArray index I out of range [0, N)"
[[noreturn]] void throw_index_error(std::size_t index, std::size_t size);

// count * each + extra bytes, or std::length_error naming `what` when that
// does not fit in a size_t.
std::size_t segment_bytes(std::size_t count, std::size_t each, std::size_t extra, const char* what);

}  // namespace detail

// multiprocessing.Array: a fixed number of T in shared memory, with a lock.
// Each element access is one plain load or store; take get_lock() around a
// read-modify-write (temp[0] += 1), as in Python. When get_lock().owner_died()
// says a process died holding the lock, the elements it was changing under
// it may be half-written (some stored, some not, a large T torn): the array
// has no way to undo that, so check or rewrite what that lock protects.
template <class T>
class SharedArray {
  static_assert(Portable<T>, "SharedArray<T>: T cannot be shared between processes; " CONCLAB_PORTABLE_RULE);

 public:
  // Array('i', [11, 22, 33, 44])
  SharedArray(std::initializer_list<T> values, std::string name = {})
      : SharedArray(values.size(), T{}, std::move(name)) {
    std::copy(values.begin(), values.end(), data_);
  }
  // Array('i', n): n copies of `value`.
  explicit SharedArray(std::size_t size, T value = T{}, std::string name = {})
      : segment_(std::move(name),
                 detail::segment_bytes(size, sizeof(T), sizeof(ProcessLock) + kOverhead, "SharedArray")),
        size_(size) {
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
//
// A process killed in the middle of set() or erase() (SIGKILL, a crash)
// leaves the dict exactly as it was before that call or as it is after it,
// never half-done, and the next operation, in any process, goes on as usual.
// How: the entries are kept twice, sorted by key, in the segment (no Boost
// allocator, whose internal lock a killed process could leave held). A write
// changes the spare copy, makes it the dict with one atomic store (the
// commit), then changes the other copy the same way. Whoever takes the lock
// over from a dead writer first copies the committed table over the spare.
// Costs: get() and overwriting set() are a binary search; a new key or an
// erase moves the entries after it, in both copies (as a sorted vector does).
template <class K, class V>
class SharedDict {
  static_assert(Portable<K>,
                "SharedDict<K, V>: the key type K cannot be shared between processes; " CONCLAB_PORTABLE_RULE);
  static_assert(Portable<V>,
                "SharedDict<K, V>: the value type V cannot be shared between processes; " CONCLAB_PORTABLE_RULE);
  static_assert(std::totally_ordered<K>, "SharedDict<K, V>: K needs < and == (the keys are kept in order)");

  struct Entry {
    K key;
    V value;
  };
  struct Header {
    ProcessLock lock;
    std::atomic<unsigned> current{0};  // which copy is the dict: 0 or 1
    std::size_t size[2] = {0, 0};
  };

 public:
  explicit SharedDict(std::size_t capacity = 1024, std::string name = {})
      : segment_(std::move(name), detail::segment_bytes(capacity, 2 * sizeof(Entry), kOverhead, "SharedDict")),
        capacity_(capacity) {
    if (capacity == 0) throw std::invalid_argument("SharedDict needs a capacity of at least one entry");
    auto& memory = segment_.memory();
    header_ = memory.construct<Header>("header")();
    copies_[0] = static_cast<Entry*>(memory.allocate_aligned(2 * capacity * sizeof(Entry), alignof(Entry)));
    copies_[1] = copies_[0] + capacity;
  }

  // dic[key] = value
  void set(const K& key, const V& value) {
    Locked table(*this);
    auto [pos, found] = table.find(key);
    if (!found && table.size() >= capacity_)
      throw std::length_error(fmt::format("SharedDict is full: capacity {} entries", capacity_));
    table.write([&, pos = pos, found = found](Entry* entries, std::size_t& size) noexcept {
      if (found) {
        std::memcpy(&entries[pos].value, &value, sizeof(V));
        return;
      }
      std::memmove(entries + pos + 1, entries + pos, (size - pos) * sizeof(Entry));
      std::construct_at(entries + pos, Entry{key, value});
      ++size;
    });
  }
  // dic.get(key)
  [[nodiscard]] std::optional<V> get(const K& key) const {
    Locked table(*this);
    auto [pos, found] = table.find(key);
    if (!found) return std::nullopt;
    return table.entries()[pos].value;
  }
  // dic[key]: throws std::out_of_range (Python's KeyError) for a missing key.
  [[nodiscard]] V at(const K& key) const {
    if (auto v = get(key)) return *v;
    throw std::out_of_range("SharedDict: key not found");
  }
  [[nodiscard]] bool contains(const K& key) const { return get(key).has_value(); }
  // del dic[key]; returns whether it was there.
  bool erase(const K& key) {
    Locked table(*this);
    auto [pos, found] = table.find(key);
    if (!found) return false;
    table.write([pos = pos](Entry* entries, std::size_t& size) noexcept {
      std::memmove(entries + pos, entries + pos + 1, (size - pos - 1) * sizeof(Entry));
      --size;
    });
    return true;
  }
  [[nodiscard]] std::size_t size() const { return Locked(*this).size(); }
  [[nodiscard]] std::size_t capacity() const { return capacity_; }
  // keys(), values(), items(): copies taken under the lock, in key order.
  [[nodiscard]] std::vector<K> keys() const {
    return collect([](const Entry& e) { return e.key; });
  }
  [[nodiscard]] std::vector<V> values() const {
    return collect([](const Entry& e) { return e.value; });
  }
  [[nodiscard]] std::vector<std::pair<K, V>> items() const {
    return collect([](const Entry& e) { return std::pair<K, V>(e.key, e.value); });
  }

  [[nodiscard]] const std::string& name() const { return segment_.name(); }

 private:
  static constexpr std::size_t kOverhead = sizeof(Header) + alignof(Entry) + 4096;

  // The lock, held for one operation, and the committed table behind it.
  class Locked {
   public:
    explicit Locked(const SharedDict& dict) : header_(*dict.header_), copies_(dict.copies_), guard_(header_.lock) {
      if (header_.lock.owner_died()) repair();
    }
    [[nodiscard]] std::size_t size() const { return header_.size[current()]; }
    [[nodiscard]] const Entry* entries() const { return copies_[current()]; }
    // Where `key` is, or would go, in key order, and whether it is there.
    [[nodiscard]] std::pair<std::size_t, bool> find(const K& key) const {
      const Entry* first = entries();
      const Entry* last = first + size();
      const Entry* it = std::lower_bound(first, last, key, [](const Entry& e, const K& k) { return e.key < k; });
      return {static_cast<std::size_t>(it - first), it != last && it->key == key};
    }
    // Applies `change(entries, size)` to the spare copy, commits, then applies
    // it to the old copy, which becomes the spare. A writer killed before the
    // commit leaves the dict as it was; after it, as it is now.
    template <class Change>
    void write(Change change) noexcept {
      const unsigned old = current();
      change(copies_[1 - old], header_.size[1 - old]);
      // A SIGKILL stops this process between two instructions, and every
      // store made before that point still lands: what matters is the order
      // of the instructions. The fences keep the compiler from moving a
      // write of either copy across the commit. (Other processes read only
      // under the lock, which orders memory between processes.)
      std::atomic_signal_fence(std::memory_order_seq_cst);
      header_.current.store(1 - old, std::memory_order_relaxed);
      std::atomic_signal_fence(std::memory_order_seq_cst);
      change(copies_[old], header_.size[old]);
    }

   private:
    [[nodiscard]] unsigned current() const { return header_.current.load(std::memory_order_relaxed); }
    // The last holder died inside an operation: the committed copy is whole,
    // the spare may be anything. Make the spare equal to it again.
    void repair() noexcept {
      const unsigned c = current();
      std::memcpy(static_cast<void*>(copies_[1 - c]), copies_[c], header_.size[c] * sizeof(Entry));
      header_.size[1 - c] = header_.size[c];
    }

    Header& header_;
    Entry* const* copies_;
    std::lock_guard<ProcessLock> guard_;
  };

  template <class F>
  auto collect(F f) const {
    Locked table(*this);
    std::vector<std::invoke_result_t<F, const Entry&>> out;
    out.reserve(table.size());
    std::for_each(table.entries(), table.entries() + table.size(), [&](const Entry& e) { out.push_back(f(e)); });
    return out;
  }

  detail::Segment segment_;
  std::size_t capacity_;
  Header* header_ = nullptr;
  Entry* copies_[2] = {nullptr, nullptr};  // capacity_ entries each
};

}  // namespace conclab
