// upload_server_framed.cpp — the upload server with a framed header (lab 10):
// "post|file_name|file_size\n", then exactly file_size bytes at once, no
// acknowledgement; the answer "ok bytes=N crc32=X\n" comes after the file.
// Observe: the newline ends the header wherever the reads fall, and the
// reader keeps the bytes that came with it for the file: no round trip.
// A refusal is "error: <reason>\n", then the connection closes.
// See also: upload_server.cpp (the seed's protocol: the acknowledgement does the framing).
#include "upload.hpp"

void serve_framed(upload::Session& session) {
  conclab::LineReader reader(session.conn);
  while (const auto header = reader.readline(upload::kMaxHeader)) {  // nullopt: the client is done
    const upload::Request request = session.check(*header);
    const upload::Saved saved = session.receive(reader, request);  // the bytes right behind the header
    session.conn.send_all(fmt::format("ok bytes={} crc32={}\n", saved.bytes, saved.crc32));
  }
}

int main(int argc, char** argv) {
  CLI::App app{"Lab 10: the upload server with a header line (post|file_name|file_size\\n) and no acknowledgement."};
  upload::ServerFlags flags;
  upload::add_server_flags(app, flags);
  return conclab::run_main(app, argc, argv, [&] { return upload::serve(flags, "framed", "\n", serve_framed); });
}
