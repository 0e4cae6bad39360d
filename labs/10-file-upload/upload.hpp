// upload.hpp — what lab 10's programs share, so that upload_server.cpp and
// upload_server_framed.cpp differ only in how a header is told apart from
// the file's bytes (and the two clients likewise):
// - the header "post|file_name|file_size" and the rules a server checks it by;
// - CRC-32 (zlib's, as Python's zlib.crc32, by Boost.CRC), printed by client and server;
// - a file received under a temporary name and renamed when complete;
// - the server's loop: one client at a time, each with an idle timeout,
//   every refusal told to the client and on stderr, the summary on SIGTERM.
#pragma once

#include <fcntl.h>
#include <boost/crc.hpp>
#include <fmt/format.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "conclab/cli.hpp"
#include "conclab/error.hpp"
#include "conclab/fd.hpp"
#include "conclab/signals.hpp"
#include "conclab/socket.hpp"

namespace upload {

inline constexpr std::uint16_t kSeedPort = 9999;
inline constexpr std::size_t kChunk = 1024;      // the seed's recv(1024) and its 1 KiB chunks
inline constexpr std::size_t kMaxHeader = 1024;  // a header is at most one such read
inline constexpr std::size_t kMaxName = 255;     // NAME_MAX

// ---------------------------------------------------------------- CRC-32

// CRC-32 as zlib computes it (Boost.CRC's crc_32_type: reflected polynomial
// 0xEDB88320, start and end inverted): the same number as Python's
// zlib.crc32. crc32("123456789") is cbf43926.
class Crc32 {
 public:
  void update(std::string_view data) noexcept { crc_.process_bytes(data.data(), data.size()); }
  [[nodiscard]] std::string hex() const { return fmt::format("{:08x}", crc_.checksum()); }

 private:
  boost::crc_32_type crc_;
};

// ---------------------------------------------------------------- the header

// A request the server turns down: "error: <reason>" goes to the client and
// "refused <peer>: <reason>" to stderr.
class Refused : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct Request {
  std::string name;
  std::int64_t size = 0;
};

inline std::string make_header(std::string_view name, std::int64_t size) {
  return fmt::format("post|{}|{}", name, size);
}

// `text` in double quotes, control bytes escaped (\n, \x00), cut after `max` bytes.
inline std::string quoted(std::string_view text, std::size_t max = 80) {
  std::string out = "\"";
  for (const unsigned char c : text.substr(0, max)) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c == '\n') {
      out += "\\n";
    } else if (c < 0x20 || c == 0x7F) {
      out += fmt::format("\\x{:02x}", c);
    } else {
      out += static_cast<char>(c);
    }
  }
  return out + (text.size() > max ? "\"..." : "\"");
}

// A name the server may create in its folder, and nothing else: one path
// component, not "." or "..", no control byte (a NUL would cut the name short).
inline void check_name(std::string_view name) {
  if (name.empty()) throw Refused("empty file name");
  if (name.size() > kMaxName) throw Refused(fmt::format("file name longer than {} bytes", kMaxName));
  for (const unsigned char c : name)
    if (c < 0x20 || c == 0x7F) throw Refused(fmt::format("file name {} has a control character", quoted(name)));
  if (name.front() == '/') throw Refused(fmt::format("file name {} is an absolute path", quoted(name)));
  if (name.find_first_of("/\\") != std::string_view::npos)
    throw Refused(fmt::format("file name {} has a path separator", quoted(name)));
  if (name == "." || name == "..") throw Refused(fmt::format("file name {} is a directory", quoted(name)));
}

inline std::int64_t parse_size(std::string_view text, std::int64_t max_bytes) {
  std::int64_t size = 0;
  const char* end = text.data() + text.size();
  const auto [stop, err] = std::from_chars(text.data(), end, size);
  if (text.empty() || stop != end || (err != std::errc{} && err != std::errc::result_out_of_range))
    throw Refused(fmt::format("file size {} is not a number", quoted(text)));
  if (size < 0 || text.front() == '-') throw Refused(fmt::format("file size {} is negative", text));
  if (err == std::errc::result_out_of_range || size > max_bytes)
    throw Refused(fmt::format("file size {} exceeds --max-bytes {}", text, max_bytes));
  return size;
}

// "post|file_name|file_size" (a "\n" or "\r\n" at the end is allowed: what
// nc sends) into a Request, or Refused saying what is wrong with it.
inline Request parse_header(std::string_view text, std::int64_t max_bytes) {
  if (text.ends_with('\n')) text.remove_suffix(1);
  if (text.ends_with('\r')) text.remove_suffix(1);
  std::vector<std::string_view> fields;
  for (std::size_t start = 0;;) {
    const std::size_t bar = text.find('|', start);
    fields.push_back(text.substr(start, bar - start));
    if (bar == std::string_view::npos) break;
    start = bar + 1;
  }
  if (fields.size() != 3) throw Refused(fmt::format("header {} is not cmd|file_name|file_size", quoted(text)));
  if (fields[0] != "post") throw Refused(fmt::format("unknown command {} (only post)", quoted(fields[0])));
  check_name(fields[1]);
  return {std::string(fields[1]), parse_size(fields[2], max_bytes)};
}

// ---------------------------------------------------------------- the file

inline Refused exists(std::string_view name) {
  return Refused(fmt::format("{} exists (the server has no --overwrite)", name));
}

// A file being received: written under a temporary name in the folder and
// renamed to its own name only once complete, so a transfer cut short (or a
// server stopped mid-file) leaves nothing behind: the destructor removes it.
class PartFile {
 public:
  PartFile(const std::filesystem::path& dir, std::string name, bool overwrite)
      : target_(dir / name), overwrite_(overwrite) {
    std::string pattern = (dir / ".upload-XXXXXX.part").string();
    fd_.reset(conclab::check(::mkostemps(pattern.data(), 5, O_CLOEXEC), "mkostemps"));
    temp_ = pattern;
    conclab::check(::fchmod(fd_.get(), 0644), "fchmod");  // mkostemps makes it rw-------
  }
  PartFile(const PartFile&) = delete;
  PartFile& operator=(const PartFile&) = delete;
  ~PartFile() {
    if (!temp_.empty()) ::unlink(temp_.c_str());
  }

  void write(std::string_view data) {
    while (!data.empty()) data.remove_prefix(conclab::check(::write(fd_.get(), data.data(), data.size()), "write"));
  }

  // The file under its own name; an existing file is replaced only with
  // --overwrite (RENAME_NOREPLACE: no window between a check and the rename).
  void commit() {
    conclab::check(::fsync(fd_.get()), "fsync");  // the bytes on disk before the name points at them
    const unsigned flags = overwrite_ ? 0U : RENAME_NOREPLACE;
    if (::renameat2(AT_FDCWD, temp_.c_str(), AT_FDCWD, target_.c_str(), flags) != 0) {
      if (errno == EEXIST) throw exists(target_.filename().string());
      conclab::throw_errno("rename");
    }
    temp_.clear();
  }

 private:
  std::filesystem::path target_;
  bool overwrite_;
  std::string temp_;
  conclab::unique_fd fd_;
};

// ---------------------------------------------------------------- the server

struct ServerFlags {
  conclab::NetFlags net{.host = "127.0.0.1", .port = kSeedPort};
  std::string dir = "uploads";
  std::int64_t max_bytes = 100LL << 20;
  double idle_timeout_s = 10;
  bool overwrite = false;
};

struct Stats {
  int served = 0;
  int uploads = 0;
  int refused = 0;
  int dropped = 0;
  std::int64_t bytes = 0;
};

struct Saved {
  std::int64_t bytes = 0;
  std::string crc32;
};

// One client's connection, as a protocol handler sees it.
struct Session {
  conclab::Socket& conn;
  const conclab::Address& peer;
  const ServerFlags& flags;
  Stats& stats;

  // The request a header asks for, or Refused: a bad header, a name the
  // server will not write, a size it will not take, a file that exists.
  [[nodiscard]] Request check(std::string_view text) const {
    Request request = parse_header(text, flags.max_bytes);
    const auto target = std::filesystem::path(flags.dir) / request.name;
    if (!flags.overwrite && std::filesystem::symlink_status(target).type() != std::filesystem::file_type::not_found)
      throw exists(request.name);
    return request;
  }

  // Exactly request.size bytes, in reads of at most 1 KiB (the seed's
  // recv(1024), but never past the file's end: what follows is the next
  // header), into the folder.
  Saved receive(conclab::LineReader& reader, const Request& request) {
    PartFile part(flags.dir, request.name, flags.overwrite);
    Crc32 crc;
    std::int64_t got = 0;
    while (got < request.size) {
      const std::string data = reader.read_some(std::min<std::size_t>(kChunk, request.size - got));
      if (data.empty())
        throw conclab::ProtocolError(fmt::format("the client closed the connection after {} of {} bytes of {}", got,
                                                 request.size, request.name));
      part.write(data);
      crc.update(data);
      got += static_cast<std::int64_t>(data.size());
    }
    part.commit();
    ++stats.uploads;
    stats.bytes += got;
    fmt::print("upload succeeded: {} bytes={} crc32={}\n", request.name, got, crc.hex());
    return {got, crc.hex()};
  }
};

inline void add_server_flags(CLI::App& app, ServerFlags& flags) {
  conclab::add_net_flags(app, flags.net, "listen on");
  app.add_option("--dir", flags.dir, "the upload folder (created if missing); nothing is written elsewhere")
      ->capture_default_str();
  app.add_option("--max-bytes", flags.max_bytes, "the largest file accepted, in bytes")
      ->check(CLI::Range(std::int64_t{0}, std::int64_t{1} << 40))
      ->capture_default_str();
  app.add_option("--idle-timeout", flags.idle_timeout_s, "seconds a client may send nothing before it is dropped")
      ->check(CLI::Range(0.001, 86400.0))
      ->capture_default_str();
  app.add_flag("--overwrite", flags.overwrite, "replace a file that exists (refused otherwise)");
}

// Tells the client why it is turned away, if it still listens.
inline void tell(conclab::Socket& conn, std::string_view message) {
  try {
    conn.send_all(message);
  } catch (const conclab::Interrupted&) {
    throw;
  } catch (const std::exception&) {  // the client is gone: nobody to tell
  }
}

// The server: `handle` serves one connection; clients are served one at a
// time (lab 10's README says why). A refusal, a client that idles, closes
// early or resets ends that connection only; SIGINT/SIGTERM ends the loop
// (a file being received is removed) and prints the summary.
template <class Handler>
int serve(const ServerFlags& flags, std::string_view protocol, std::string_view line_end, Handler handle) {
  conclab::stop_on_signals();
  std::filesystem::create_directories(flags.dir);
  auto server = conclab::create_server(flags.net.host, static_cast<std::uint16_t>(flags.net.port));
  fmt::print("listening on {}\n", server.address());
  Stats stats;
  try {
    for (;;) {
      auto [conn, peer] = server.accept();
      conn.settimeout(std::chrono::duration<double>(flags.idle_timeout_s));
      ++stats.served;
      fmt::print("connected {}\n", peer);
      Session session{conn, peer, flags, stats};
      std::string refusal;
      std::string why;
      try {
        handle(session);
      } catch (const conclab::Interrupted&) {
        throw;
      } catch (const Refused& e) {
        refusal = e.what();
      } catch (const conclab::LineTooLong& e) {  // a header line without its end
        refusal = e.what();
      } catch (const conclab::TimeoutError&) {
        why = fmt::format("idle for {} s", flags.idle_timeout_s);
      } catch (const std::exception& e) {  // closed early, reset, a full disk: this client only
        why = e.what();
      }
      if (!refusal.empty()) {
        ++stats.refused;
        fmt::print(stderr, "refused {}: {}\n", peer, refusal);
        tell(conn, fmt::format("error: {}{}", refusal, line_end));
      }
      if (!why.empty()) {
        ++stats.dropped;
        fmt::print(stderr, "dropped {}: {}\n", peer, why);
        tell(conn, fmt::format("error: {}{}", why, line_end));
      }
    }
  } catch (const conclab::Interrupted&) {
  }
  fmt::print("model=iterative protocol={} served={} uploads={} refused={} dropped={} bytes={}\n", protocol,
             stats.served, stats.uploads, stats.refused, stats.dropped, stats.bytes);
  return 0;
}

// ---------------------------------------------------------------- the client

struct ClientFlags {
  conclab::NetFlags net{.host = "127.0.0.1", .port = kSeedPort};
  std::vector<std::string> files;
  std::string as;
};

inline void add_client_flags(CLI::App& app, ClientFlags& flags) {
  conclab::add_net_flags(app, flags.net, "connect to");
  app.add_option("files", flags.files, "the files to upload, one after the other on one connection")->required();
  app.add_option("--as", flags.as, "the name to upload a single FILE under (default: its base name)");
  app.callback([&flags] {
    if (!flags.as.empty() && flags.files.size() != 1) throw CLI::ValidationError("--as", "needs exactly one file");
  });
}

// The connection to the server, with TCP_NODELAY: without it, a header
// written right after a file's last small chunk waits for that chunk's ACK
// (Nagle's algorithm), which the server delays by up to 40 ms since it has
// nothing to send: 40 ms per file (the seed's Python client shows it).
inline conclab::Socket connect(const ClientFlags& flags) {
  auto sock = conclab::create_connection(flags.net.host, static_cast<std::uint16_t>(flags.net.port));
  sock.setsockopt(IPPROTO_TCP, TCP_NODELAY, 1);
  return sock;
}

// A file to upload: its name on the server and its size.
struct Local {
  std::string path;
  std::string name;
  std::int64_t size = 0;
};

inline std::vector<Local> local_files(const ClientFlags& flags) {
  std::vector<Local> files;
  for (const std::string& path : flags.files) {
    const std::string name = flags.as.empty() ? std::filesystem::path(path).filename().string() : flags.as;
    files.push_back({path, name, static_cast<std::int64_t>(std::filesystem::file_size(path))});
  }
  return files;
}

// What a client says when the server's answer to `name` is not the expected one.
inline std::string refusal(std::string_view name, std::string_view answer) {
  if (answer.starts_with("error: ")) return fmt::format("the server refused {}: {}", name, answer.substr(7));
  if (answer.empty()) return fmt::format("the server closed the connection before it took {}", name);
  return fmt::format("unexpected answer from the server for {}: {}", name, quoted(answer));
}

// The seed's loop: the file in chunks of 1 KiB, each sent whole (sendall).
// Returns the CRC-32 of what was sent.
inline std::string send_file(conclab::Socket& sock, const Local& file) {
  std::ifstream in(file.path, std::ios::binary);
  if (!in) throw std::runtime_error(fmt::format("cannot open {}", file.path));
  Crc32 crc;
  std::array<char, kChunk> buffer{};
  for (std::int64_t sent = 0; sent < file.size;) {
    in.read(buffer.data(), static_cast<std::streamsize>(std::min<std::int64_t>(kChunk, file.size - sent)));
    const std::string_view data(buffer.data(), static_cast<std::size_t>(in.gcount()));
    if (data.empty()) throw std::runtime_error(fmt::format("{} ended before its {} bytes", file.path, file.size));
    sock.send_all(data);
    crc.update(data);
    sent += static_cast<std::int64_t>(data.size());
  }
  return crc.hex();
}

}  // namespace upload
