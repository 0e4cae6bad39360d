// upload_client_framed.cpp — the upload client with a framed header (lab 10):
// for each file, "post|file_name|file_size\n" and the bytes right behind it,
// then the server's answer "ok bytes=N crc32=X" (or "error: <reason>").
// Observe: no round trip before the bytes; the answer at the end tells the
// client that the file was saved whole, which the seed's client never learns.
// See also: upload_client.cpp (waits for "nothing"), upload_server_framed.cpp.
#include "upload.hpp"

int main(int argc, char** argv) {
  CLI::App app{"Lab 10: the upload client with a header line (post|file_name|file_size\\n) and no acknowledgement."};
  upload::ClientFlags flags;
  upload::add_client_flags(app, flags);
  return conclab::run_main(app, argc, argv, [&] {
    const std::vector<upload::Local> files = upload::local_files(flags);  // each one there, before connecting
    auto sock = conclab::create_connection(flags.net.host, static_cast<std::uint16_t>(flags.net.port));
    conclab::LineReader reader(sock);
    std::int64_t total = 0;
    for (const upload::Local& file : files) {
      sock.send_all(upload::make_header(file.name, file.size) + "\n");  // the newline ends the header
      std::string crc;
      try {
        crc = upload::send_file(sock, file);
      } catch (const conclab::SocketError&) {  // the server stopped reading: its answer says why
      }
      const std::string answer = reader.readline(upload::kMaxHeader).value_or("");
      if (answer != fmt::format("ok bytes={} crc32={}", file.size, crc))
        throw std::runtime_error(upload::refusal(file.name, answer));
      fmt::print("sent {} bytes={} crc32={}\n", file.name, file.size, crc);
      total += file.size;
    }
    fmt::print("protocol=framed files={} bytes={}\n", files.size(), total);
  });
}
