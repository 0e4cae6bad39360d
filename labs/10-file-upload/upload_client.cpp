// upload_client.cpp — the seed's upload client (lab 10): for each file, the
// header "post|file_name|file_size", wait for the server's "nothing", then
// the bytes in 1 KiB chunks; prints what it sent and its CRC-32.
// Observe: without the wait (--no-ack) the header and the first bytes reach
// the server in one read, and it takes them all for the header.
// See also: upload_client_framed.cpp, python/upload_client.py (the seed's), upload_server.cpp.
#include "upload.hpp"

int main(int argc, char** argv) {
  CLI::App app{"Lab 10: the seed's upload client (post|file_name|file_size, wait for \"nothing\", the bytes)."};
  upload::ClientFlags flags;
  upload::add_client_flags(app, flags);
  bool no_ack = false;
  app.add_flag("--no-ack", no_ack,
               "send the bytes right behind the header, without waiting: the sticky-packet problem");
  return conclab::run_main(app, argc, argv, [&] {
    const std::vector<upload::Local> files = upload::local_files(flags);  // each one there, before connecting
    auto sock = upload::connect(flags);
    // --no-ack: TCP_CORK holds every write until a segment is full (or the
    // cork comes off), so the header and the bytes leave together every time,
    // as they may whenever nothing stands between them.
    if (no_ack) sock.setsockopt(IPPROTO_TCP, TCP_CORK, 1);
    std::int64_t total = 0;
    for (const upload::Local& file : files) {
      sock.send_all(upload::make_header(file.name, file.size));  // the seed's sk.send(file_name+'|'+str(file_size))
      if (!no_ack) {
        const std::string ack = sock.recv(1024);  // the seed's sk.recv(1024): wait until the server has the header
        if (ack != "nothing") throw std::runtime_error(upload::refusal(file.name, ack));
      }
      const std::string crc = upload::send_file(sock, file);
      fmt::print("sent {} bytes={} crc32={}\n", file.name, file.size, crc);
      total += file.size;
    }
    // Done: say so (shutdown) and wait for the server to close its side: then
    // it has written every file, which the seed's protocol has no other way to tell.
    if (no_ack) sock.setsockopt(IPPROTO_TCP, TCP_CORK, 0);
    sock.shutdown(SHUT_WR);
    std::string answer;
    for (std::string data; !(data = sock.recv(1024)).empty();) answer += data;
    if (no_ack) {
      fmt::print("the server answered {}\n", upload::quoted(answer, 200));
    } else if (!answer.empty()) {
      throw std::runtime_error(upload::refusal(files.back().name, answer));
    }
    fmt::print("protocol=seed files={} bytes={}\n", files.size(), total);
  });
}
