// The fork server of conclab's Pool, its workers, and the pool's side of it
// (see forkserver.hpp for why the workers come from a server).
#include "forkserver.hpp"

#include <fcntl.h>
#include <link.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <stdexcept>
#include <string>

#include "conclab/error.hpp"
#include "conclab/wire.hpp"

extern char** environ;

namespace conclab::detail {

namespace {

constexpr const char* kServerEnv = "CONCLAB_FORKSERVER";         // the server's end of its socket
constexpr const char* kParentEnv = "CONCLAB_FORKSERVER_PARENT";  // the pool's pid
constexpr int kServerFd = 3;   // where the server finds its socket
constexpr int kWorkerFd = 3;   // where a worker finds its channel
constexpr std::size_t kHeader = sizeof(std::uint32_t) + sizeof(std::uint64_t);
constexpr std::size_t kMaxServerMessage = 64 * 1024;
constexpr const char* kServerSuffix = " (pool fork server)";  // in ps: "<program> (pool fork server)"
constexpr const char* kWorkerSuffix = " (pool worker)";       // shorter: it is written over the server's

char* server_argv0 = nullptr;  // the server's argv[0], renamed in each worker

int pidfd_open(pid_t pid) { return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)); }

// True when `fd` is a SOCK_SEQPACKET socket: the fork server's, handed over by its pool.
bool is_server_socket(int fd) noexcept {
  int type = 0;
  socklen_t len = sizeof type;
  return ::getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) == 0 && type == SOCK_SEQPACKET;
}

// --- sending and receiving descriptors on a SOCK_SEQPACKET socket ------------------------

// One message with up to two descriptors attached (copies of them arrive). Returns false when the
// peer is gone.
bool send_message(int fd, std::string_view body, const std::vector<int>& fds = {}) {
  iovec iov{const_cast<char*>(body.data()), body.size()};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  alignas(cmsghdr) char control[CMSG_SPACE(2 * sizeof(int))] = {};
  if (!fds.empty()) {
    msg.msg_control = control;
    msg.msg_controllen = CMSG_SPACE(fds.size() * sizeof(int));
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(fds.size() * sizeof(int));
    std::memcpy(CMSG_DATA(c), fds.data(), fds.size() * sizeof(int));
  }
  for (;;) {
    if (::sendmsg(fd, &msg, MSG_NOSIGNAL) >= 0) return true;
    if (errno != EINTR) return false;
  }
}

// --- the worker -------------------------------------------------------------------------

bool write_all(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

// Waits for bytes: first by polling for the spin window, then by sleeping in recv.
ssize_t spin_recv(int fd, char* buffer, std::size_t size, std::chrono::microseconds spin) {
  const auto until = std::chrono::steady_clock::now() + spin;
  while (spin.count() > 0) {
    ssize_t n = ::recv(fd, buffer, size, MSG_DONTWAIT);
    if (n >= 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) return n;
    ::sched_yield();  // let a runnable thread on this CPU go first
    if (std::chrono::steady_clock::now() >= until) break;
  }
  return ::recv(fd, buffer, size, 0);
}

// Resolves CodeRefs, remembering each module's base.
class Resolver {
 public:
  std::uintptr_t operator()(const CodeRef& ref) {
    auto it = bases_.find(ref.module);
    if (it == bases_.end()) it = bases_.emplace(ref.module, resolve(CodeRef{ref.module, 0})).first;
    return it->second + ref.offset;
  }

 private:
  std::map<std::string, std::uintptr_t> bases_;
};

// The loop a worker runs until told to exit or the pool goes away. It never
// returns: the worker leaves with _exit.
[[noreturn]] void worker_main(int fd, const WorkerConfig& config, const std::string& init_refs) {
  std::string out;
  Resolver resolver;
  if (config.initializer) {
    try {
      std::string_view refs(init_refs);
      auto trampoline = reinterpret_cast<Trampoline>(resolver(decode_ref(refs)));
      auto fn = resolver(decode_ref(refs));
      trampoline(fn, config.initializer->args);
      append_frame(out, kReady, {});
    } catch (...) {
      out.clear();
      append_frame(out, kInitFailed, describe(std::current_exception(), true));
      write_all(fd, out);
      std::fflush(nullptr);
      ::_exit(3);
    }
    if (!write_all(fd, out)) ::_exit(0);
  }
  std::string in;
  char buffer[64 * 1024];
  for (;;) {
    auto frame = take_frame(in);
    if (!frame) {
      ssize_t n = spin_recv(fd, buffer, sizeof buffer, config.spin);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;  // the pool is gone
      in.append(buffer, static_cast<std::size_t>(n));
      continue;
    }
    auto& [kind, body] = *frame;
    if (kind != kTask) break;
    out.clear();
    try {
      std::string_view view(body);
      auto trampoline = reinterpret_cast<Trampoline>(resolver(decode_ref(view)));
      auto fn = resolver(decode_ref(view));
      append_frame(out, kResult, trampoline(fn, view));
    } catch (...) {
      append_frame(out, kError, describe(std::current_exception(), true));
    }
    std::fflush(nullptr);  // what the task printed comes out before its result is known
    // One result per send, before the next task starts: if this worker dies,
    // the pool knows the oldest task without a result is the one it was running.
    if (!write_all(fd, out)) break;
  }
  std::fflush(nullptr);
  ::_exit(0);
}

// --- the server -------------------------------------------------------------------------

struct Child {
  pid_t pid;
  unique_fd pidfd;
};

void report_spawn_failure(int fd, int err, const char* call) {
  std::string body;
  wire::encode<std::uint32_t>(body, kSpawnFailed);
  wire::encode<std::int32_t>(body, err);
  body.append(call);
  send_message(fd, body);
}

// Forks one worker and hands its channel to the pool. The server keeps the
// worker's pidfd to learn of its death and reaps it.
void fork_worker(int server_fd, std::vector<Child>& children, const WorkerConfig& config,
                 const std::string& init_refs) {
  int pair[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) < 0) return report_spawn_failure(server_fd, errno, "socketpair");
  unique_fd pool_end(pair[0]), worker_end(pair[1]);
  const pid_t server = ::getpid();
  pid_t pid = ::fork();
  if (pid < 0) return report_spawn_failure(server_fd, errno, "fork");
  if (pid == 0) {
    // The worker: die with the server; keep 0, 1, 2 and its channel, as fd 3.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != server) ::_exit(1);
    ::signal(SIGINT, SIG_DFL);
    ::signal(SIGTERM, SIG_DFL);
    if (server_argv0) {  // so that ps tells the workers from their server
      const std::size_t room = std::strlen(server_argv0);
      const char* cut = std::strstr(server_argv0, kServerSuffix);
      if (cut) {
        std::size_t at = static_cast<std::size_t>(cut - server_argv0);
        std::memset(server_argv0 + at, 0, room - at);
        std::memcpy(server_argv0 + at, kWorkerSuffix, std::strlen(kWorkerSuffix));
      }
    }
    if (::dup2(worker_end.get(), kWorkerFd) < 0) ::_exit(1);
    close_descriptors(kWorkerFd + 1);
    try {
      worker_main(kWorkerFd, config, init_refs);
    } catch (...) {  // never unwind into the server's loop: this is a worker
      ::_exit(70);
    }
  }
  worker_end.reset();
  unique_fd pidfd(pidfd_open(pid));  // a child not yet reaped: cannot fail for a reused pid
  if (!pidfd) {
    int err = errno;
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
    return report_spawn_failure(server_fd, err, "pidfd_open");
  }
  std::string body;
  wire::encode<std::uint32_t>(body, kSpawned);
  wire::encode<std::int32_t>(body, pid);
  send_message(server_fd, body, {pool_end.get()});
  children.push_back({pid, std::move(pidfd)});
}

[[noreturn]] void leave(std::vector<Child>& children, int code) {
  for (auto& c : children) ::kill(c.pid, SIGKILL);
  for (auto& c : children)
    while (::waitpid(c.pid, nullptr, 0) < 0 && errno == EINTR) {
    }
  ::_exit(code);
}

[[noreturn]] void serve(int fd) {
  // Ctrl-C reaches the whole process group: the server leaves when its pool
  // does (its socket closes, or the pool's thread dies), not before.
  ::signal(SIGINT, SIG_IGN);
  std::vector<Child> children;
  WorkerConfig config;
  std::string init_refs;  // the initializer's trampoline and function, as CodeRefs
  std::string buffer(kMaxServerMessage, '\0');
  for (;;) {
    std::vector<pollfd> fds{{fd, POLLIN, 0}};
    for (auto& c : children) fds.push_back({c.pidfd.get(), POLLIN, 0});
    if (::poll(fds.data(), fds.size(), -1) < 0) {
      if (errno == EINTR) continue;
      leave(children, 1);
    }
    // Deaths first: a worker that died is reported before another is forked.
    for (std::size_t i = fds.size() - 1; i >= 1; --i) {
      if (!fds[i].revents) continue;
      Child& c = children[i - 1];
      int status = 0;
      if (::waitpid(c.pid, &status, 0) < 0) continue;
      std::string body;
      wire::encode<std::uint32_t>(body, kDied);
      wire::encode<std::int32_t>(body, c.pid);
      wire::encode<std::int32_t>(body, status);
      children.erase(children.begin() + static_cast<std::ptrdiff_t>(i - 1));
      if (!send_message(fd, body)) leave(children, 1);
    }
    if (!fds[0].revents) continue;
    ssize_t n = ::recv(fd, buffer.data(), buffer.size(), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) leave(children, 0);  // the pool closed its end
    std::string_view msg(buffer.data(), static_cast<std::size_t>(n));
    try {
      auto kind = wire::decode<std::uint32_t>(msg);
      if (kind == kConfig) {
        config.spin = std::chrono::microseconds(wire::decode<std::int64_t>(msg));
        if (wire::decode<std::uint8_t>(msg)) {
          init_refs = wire::decode<std::string>(msg);
          config.initializer = Initializer{nullptr, 0, wire::decode<std::string>(msg)};
        }
      } else if (kind == kSpawn) {
        fork_worker(fd, children, config, init_refs);
      }
    } catch (const std::exception&) {
      leave(children, 1);  // a message the pool never sends
    }
  }
}

// Before main(): become the fork server when started as one. The program's
// global constructors that come before this one in the link order (those of
// the program's own files) have run; those of libraries linked after
// libconclab have not, and never will in the server or its workers.
// (glibc passes a constructor the program's argc, argv and envp.)
__attribute__((constructor)) void forkserver_hook(int, char** argv, char**) {
  const char* server = std::getenv(kServerEnv);
  const char* parent = std::getenv(kParentEnv);
  if (!server || !parent) return;
  const pid_t expected = static_cast<pid_t>(std::atol(parent));
  ::unsetenv(kServerEnv);
  ::unsetenv(kParentEnv);
  // A variable left in the environment by someone else: run as the program.
  if (!is_server_socket(kServerFd)) return;
  // Die with the pool's thread that started us; it may be gone already.
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (::getppid() != expected) ::_exit(1);
  server_argv0 = argv ? argv[0] : nullptr;
  serve(kServerFd);
}

}  // namespace

// --- frames -------------------------------------------------------------------------------

void append_frame(std::string& out, Kind kind, std::string_view body) {
  wire::encode<std::uint32_t>(out, kind);
  wire::encode<std::uint64_t>(out, body.size());
  out.append(body);
}

std::optional<std::pair<Kind, std::string>> take_frame(std::string& buffer) {
  if (buffer.size() < kHeader) return std::nullopt;
  std::string_view head(buffer.data(), kHeader);
  auto kind = static_cast<Kind>(wire::decode<std::uint32_t>(head));
  auto size = wire::decode<std::uint64_t>(head);
  if (buffer.size() - kHeader < size) return std::nullopt;
  std::string body = buffer.substr(kHeader, size);
  buffer.erase(0, kHeader + size);
  return std::make_pair(kind, std::move(body));
}

// --- code references ------------------------------------------------------------------------

CodeRef code_ref(std::uintptr_t address) {
  struct Search {
    std::uintptr_t address;
    std::optional<CodeRef> found;
  } search{address, std::nullopt};
  ::dl_iterate_phdr(
      [](dl_phdr_info* info, std::size_t, void* data) -> int {
        auto& s = *static_cast<Search*>(data);
        for (int i = 0; i < info->dlpi_phnum; ++i) {
          const auto& ph = info->dlpi_phdr[i];
          if (ph.p_type != PT_LOAD) continue;
          std::uintptr_t start = info->dlpi_addr + ph.p_vaddr;
          if (s.address >= start && s.address < start + ph.p_memsz) {
            s.found = CodeRef{info->dlpi_name ? info->dlpi_name : "", s.address - info->dlpi_addr};
            return 1;
          }
        }
        return 0;
      },
      &search);
  if (!search.found) throw std::invalid_argument("a Pool task's function is in no loaded module");
  return *search.found;
}

std::uintptr_t resolve(const CodeRef& ref) {
  struct Search {
    const std::string* module;
    std::optional<std::uintptr_t> base;
  } search{&ref.module, std::nullopt};
  ::dl_iterate_phdr(
      [](dl_phdr_info* info, std::size_t, void* data) -> int {
        auto& s = *static_cast<Search*>(data);
        if (*s.module != (info->dlpi_name ? info->dlpi_name : "")) return 0;
        s.base = info->dlpi_addr;
        return 1;
      },
      &search);
  if (!search.base)
    throw std::runtime_error("the task's code is in '" + ref.module + "', which the worker has not loaded");
  return *search.base + ref.offset;
}

void encode_ref(std::string& out, const CodeRef& ref) {
  wire::encode(out, ref.module);
  wire::encode(out, ref.offset);
}

CodeRef decode_ref(std::string_view& in) {
  CodeRef ref;
  ref.module = wire::decode<std::string>(in);
  ref.offset = wire::decode<std::uint64_t>(in);
  return ref;
}

// --- the pool's side ------------------------------------------------------------------------

ForkServer::ForkServer(const WorkerConfig& config) {
  // This program is being started as a fork server, and a constructor of a
  // global object (run before the server takes over) makes a Pool: that Pool
  // would start a server of its own, and so on without end.
  if (std::getenv(kServerEnv)) {
    std::fprintf(stderr,
                 "conclab: a Pool cannot be made by a global object's constructor (its fork server runs the "
                 "program's global constructors again): make it in main()\n");
    ::_exit(70);
  }
  // The configuration first: nothing to clean up if it cannot be encoded.
  std::string body;
  wire::encode<std::uint32_t>(body, kConfig);
  wire::encode<std::int64_t>(body, config.spin.count());
  wire::encode<std::uint8_t>(body, config.initializer ? 1 : 0);
  if (config.initializer) {
    std::string refs;
    encode_ref(refs, code_ref(reinterpret_cast<std::uintptr_t>(config.initializer->trampoline)));
    encode_ref(refs, code_ref(config.initializer->fn));
    wire::encode(body, refs);
    wire::encode(body, config.initializer->args);
  }
  if (body.size() > kMaxServerMessage)
    throw std::invalid_argument("Pool: the initializer's arguments are too large (64 KiB at most)");

  int pair[2];
  check(::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair), "socketpair");
  channel_.reset(pair[0]);
  unique_fd server_end(pair[1]);

  // The server gets its socket as fd 3 and nothing else but 0, 1 and 2;
  // a clean signal mask and default signal dispositions.
  posix_spawn_file_actions_t actions;
  posix_spawnattr_t attr;
  ::posix_spawn_file_actions_init(&actions);
  ::posix_spawnattr_init(&attr);
  ::posix_spawn_file_actions_adddup2(&actions, server_end.get(), kServerFd);
  ::posix_spawn_file_actions_addclosefrom_np(&actions, kServerFd + 1);
  sigset_t none, all;
  sigemptyset(&none);
  sigfillset(&all);
  sigdelset(&all, SIGKILL);
  sigdelset(&all, SIGSTOP);
  ::posix_spawnattr_setsigmask(&attr, &none);
  ::posix_spawnattr_setsigdefault(&attr, &all);
  ::posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);

  std::vector<std::string> env_strings{std::string(kServerEnv) + "=" + std::to_string(kServerFd),
                                       std::string(kParentEnv) + "=" + std::to_string(::getpid())};
  std::vector<char*> env;
  for (auto& s : env_strings) env.push_back(s.data());
  for (char** e = environ; e && *e; ++e)
    if (std::strncmp(*e, "CONCLAB_FORKSERVER", 18) != 0) env.push_back(*e);
  env.push_back(nullptr);
  std::string name = std::string(program_invocation_short_name) + kServerSuffix;
  char* argv[] = {name.data(), nullptr};
  int rc = ::posix_spawn(&pid_, "/proc/self/exe", &actions, &attr, argv, env.data());
  ::posix_spawn_file_actions_destroy(&actions);
  ::posix_spawnattr_destroy(&attr);
  if (rc != 0) throw_errno("posix_spawn", rc);
  server_end.reset();

  if (!send_message(channel_.get(), body)) {
    int err = errno;
    stop();
    throw_errno("sendmsg (to the pool's fork server)", err);
  }
}

ForkServer::~ForkServer() { stop(); }

void ForkServer::stop() noexcept {
  channel_.reset();
  if (pid_ > 0) {
    while (::waitpid(pid_, nullptr, 0) < 0 && errno == EINTR) {
    }
    pid_ = -1;
  }
}

bool ForkServer::read_message(bool block, std::string& body, std::vector<int>& fds) {
  body.assign(kMaxServerMessage, '\0');
  iovec iov{body.data(), body.size()};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  alignas(cmsghdr) char control[CMSG_SPACE(2 * sizeof(int))] = {};
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  ssize_t n;
  do {
    n = ::recvmsg(channel_.get(), &msg, MSG_CMSG_CLOEXEC | (block ? 0 : MSG_DONTWAIT));
  } while (n < 0 && errno == EINTR);
  if (n < 0 && !block && (errno == EAGAIN || errno == EWOULDBLOCK)) return false;
  if (n < 0) throw_errno("recvmsg (from the pool's fork server)");
  if (n == 0) throw std::runtime_error(gone());
  body.resize(static_cast<std::size_t>(n));
  fds.clear();
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c))
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
      std::size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
      for (std::size_t i = 0; i < count; ++i) {
        int fd;
        std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
        fds.push_back(fd);
      }
    }
  if (msg.msg_flags & MSG_CTRUNC) {
    for (int fd : fds) ::close(fd);
    fds.clear();
    // The kernel drops descriptors it cannot install: this process is at its
    // descriptor limit (RLIMIT_NOFILE).
    throw_errno("recvmsg (a new worker's descriptors did not arrive)", EMFILE);
  }
  return true;
}

std::string ForkServer::gone() const {
  return "the pool's fork server (pid " + std::to_string(pid_) + ") has died";
}

SpawnedWorker ForkServer::spawn() {
  std::string request;
  wire::encode<std::uint32_t>(request, kSpawn);
  if (!send_message(channel_.get(), request)) throw std::runtime_error(gone());
  std::string body;
  std::vector<int> fds;
  for (;;) {
    read_message(true, body, fds);
    std::vector<unique_fd> owned;
    for (int fd : fds) owned.emplace_back(fd);
    std::string_view in(body);
    auto kind = wire::decode<std::uint32_t>(in);
    if (kind == kDied) {
      auto pid = wire::decode<std::int32_t>(in);
      deaths_.push_back({pid, wire::decode<std::int32_t>(in)});
      continue;
    }
    if (kind == kSpawnFailed) {
      int err = wire::decode<std::int32_t>(in);
      throw_errno(std::string(in) + " (in the pool's fork server)", err);
    }
    if (kind != kSpawned || owned.size() != 1) throw std::runtime_error("the pool's fork server sent a bad message");
    SpawnedWorker w;
    w.pid = wire::decode<std::int32_t>(in);
    w.channel = std::move(owned[0]);
    check(::fcntl(w.channel.get(), F_SETFL, O_NONBLOCK), "fcntl");
    return w;
  }
}

std::vector<WorkerDeath> ForkServer::take_deaths() {
  std::string body;
  std::vector<int> fds;
  while (read_message(false, body, fds)) {
    for (int fd : fds) ::close(fd);
    std::string_view in(body);
    if (wire::decode<std::uint32_t>(in) != kDied) throw std::runtime_error("the pool's fork server sent a bad message");
    auto pid = wire::decode<std::int32_t>(in);
    deaths_.push_back({pid, wire::decode<std::int32_t>(in)});
  }
  return std::exchange(deaths_, {});
}

}  // namespace conclab::detail
