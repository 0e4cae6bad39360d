// upload_client_framed.cpp — the upload client with a framed header (lab 10):
// for each file, "post|file_name|file_size\n" and the bytes right behind it;
// the server answers each file with "ok bytes=N crc32=X" (or "error: <reason>").
// Observe: no wait before the bytes, nor between files: up to kWindow answers
// may be outstanding, so many small files cost no round trip each. An answer
// tells the client that its file was saved whole, which the seed's client never learns.
// See also: upload_client.cpp (waits for "nothing" before each file), upload_server_framed.cpp.
#include <deque>

#include "upload.hpp"

// Answers not read yet, at most: kWindow short lines always fit in the
// socket buffers, so the server never blocks on an answer while the client
// blocks sending (each waiting for the other: a deadlock).
constexpr std::size_t kWindow = 64;

struct Sent {
  std::string name;
  std::int64_t size;
  std::string crc32;
};

int main(int argc, char** argv) {
  CLI::App app{"Lab 10: the upload client with a header line (post|file_name|file_size\\n) and no acknowledgement."};
  upload::ClientFlags flags;
  upload::add_client_flags(app, flags);
  return conclab::run_main(app, argc, argv, [&] {
    const std::vector<upload::Local> files = upload::local_files(flags);  // each one there, before connecting
    auto sock = upload::connect(flags);
    conclab::LineReader reader(sock);
    std::deque<Sent> unanswered;
    std::int64_t total = 0;
    auto read_answer = [&] {
      const Sent sent = unanswered.front();
      unanswered.pop_front();
      const std::string answer = reader.readline(upload::kMaxHeader).value_or("");
      if (answer != fmt::format("ok bytes={} crc32={}", sent.size, sent.crc32))
        throw std::runtime_error(upload::refusal(sent.name, answer));
      fmt::print("sent {} bytes={} crc32={}\n", sent.name, sent.size, sent.crc32);
      total += sent.size;
    };
    for (const upload::Local& file : files) {
      try {
        sock.send_all(upload::make_header(file.name, file.size) + "\n");  // the newline ends the header
        unanswered.push_back({file.name, file.size, upload::send_file(sock, file)});
      } catch (const conclab::SocketError&) {  // the server stopped reading: its answers say why
        unanswered.push_back({file.name, file.size, ""});
        break;
      }
      if (unanswered.size() > kWindow) read_answer();
    }
    while (!unanswered.empty()) read_answer();
    fmt::print("protocol=framed files={} bytes={}\n", files.size(), total);
  });
}
