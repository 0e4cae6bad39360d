// forkserver.hpp (internal) — where a Pool's worker processes come from.
//
// A Pool never forks its workers from its own, multi-threaded process: after
// fork() only the forking thread exists in the child, and a lock another
// thread held at that moment (a mutex of the program, one inside a library)
// stays locked there forever, so a worker could hang alive. (glibc's fork()
// resets its own locks in the child, malloc's arenas and stdio's, those of
// every FILE included, even one another thread holds with flockfile(); what
// they guarded may be half-updated, and no C library resets the program's.)
// Instead the pool starts a fork server, as CPython's "forkserver"
// start method does: posix_spawn() runs this very program again (a fresh
// image, /proc/self/exe) with CONCLAB_FORKSERVER in its environment; before
// main() a constructor of libconclab sees it and becomes the server, a
// process with one thread that never takes a lock another thread could hold.
// One thread only while nothing before that constructor starts a thread: a
// global object of the program whose constructor starts one would run in the
// server too, and the server's forks would no longer be safe (pool.hpp).
// The server forks each worker when the pool asks, hands the pool the
// worker's channel over its socket (SCM_RIGHTS), reaps workers and
// reports each death with its wait status.
//
// Code addresses differ between the two images (ASLR), so a task's function
// travels as a CodeRef: the module it lives in and its offset there.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "conclab/fd.hpp"
#include "conclab/pool.hpp"

namespace conclab::detail {

// --- the channel between the pool and a worker ------------------------------------------
// Every message, both ways: [u32 kind][u64 length][length bytes].
enum Kind : std::uint32_t {
  kTask = 1,        // pool -> worker: [CodeRef trampoline][CodeRef fn][encoded arguments]
  kExit = 2,        // pool -> worker: leave
  kResult = 3,      // worker -> pool: the encoded result
  kError = 4,       // worker -> pool: "<type>: <message>" of the exception
  kInitFailed = 5,  // worker -> pool: the initializer threw; the worker exits
  kReady = 6,       // worker -> pool: the initializer finished (sent only when there is one)
};

// The largest frame a pool accepts from a worker: more is a worker gone wrong
// (a task that wrote into the pool's socket), not a result.
inline constexpr std::uint64_t kMaxFrame = std::uint64_t{1} << 32;

void append_frame(std::string& out, Kind kind, std::string_view body);
// Takes one whole frame off the front of `buffer`, if there is one.
std::optional<std::pair<Kind, std::string>> take_frame(std::string& buffer);

// --- code addresses across images ---------------------------------------------------------

// A function's module (as dl_iterate_phdr names it; "" for the program) and offset.
struct CodeRef {
  std::string module;
  std::uint64_t offset = 0;
};
// Throws std::invalid_argument when `address` is in no loaded module.
CodeRef code_ref(std::uintptr_t address);
// The address of `ref` in this process; throws when its module is not loaded here.
std::uintptr_t resolve(const CodeRef& ref);
void encode_ref(std::string& out, const CodeRef& ref);
CodeRef decode_ref(std::string_view& in);

// --- the pool's side of a fork server -------------------------------------------------------

// What every worker needs, sent once when the server starts.
struct WorkerConfig {
  std::chrono::microseconds spin{};
  std::optional<Initializer> initializer;
};

struct SpawnedWorker {
  pid_t pid = -1;
  unique_fd channel;  // the pool's end of the worker's socket (non-blocking)
};

struct WorkerDeath {
  pid_t pid;
  int wait_status;
};

class ForkServer {
 public:
  // Starts the server (posix_spawn of /proc/self/exe). Call it from the
  // thread that stays alive as long as the server: the server dies with it.
  explicit ForkServer(const WorkerConfig& config);
  // Closes the channel: the server kills any worker left, reaps them all and
  // exits; then it is reaped here.
  ~ForkServer();
  ForkServer(const ForkServer&) = delete;
  ForkServer& operator=(const ForkServer&) = delete;

  // Asks for one more worker and waits for it. Throws std::system_error
  // naming the call that failed (in the server: fork, socketpair, ...).
  SpawnedWorker spawn();
  // Readable when deaths are reported (or the server is gone).
  [[nodiscard]] int fd() const { return channel_.get(); }
  // The deaths reported so far, without waiting. Throws when the server is gone.
  std::vector<WorkerDeath> take_deaths();
  // True when spawn() read deaths that take_deaths() has not returned yet.
  [[nodiscard]] bool deaths_waiting() const { return !deaths_.empty(); }
  [[nodiscard]] pid_t pid() const { return pid_; }
  // Ends the server now (its workers die with it) and reaps it.
  void stop() noexcept;

 private:
  // Reads one message; false when none is waiting (non-blocking).
  bool read_message(bool block, std::string& body, std::vector<int>& fds);
  [[nodiscard]] std::string gone() const;
  pid_t pid_ = -1;
  unique_fd channel_;
  std::vector<WorkerDeath> deaths_;  // reported while waiting for a spawn
};

// Messages on the server's socket (SOCK_SEQPACKET: one message per send).
enum ServerKind : std::uint32_t {
  kConfig = 1,       // pool -> server: spin window, initializer
  kSpawn = 2,        // pool -> server: fork one more worker
  kSpawned = 3,      // server -> pool: [pid], with the worker's channel attached
  kSpawnFailed = 4,  // server -> pool: [errno][call]
  kDied = 5,         // server -> pool: [pid][wait status]
};

}  // namespace conclab::detail
