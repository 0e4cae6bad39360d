// upload_server.cpp — the seed's upload server (lab 10): for each file, the
// header "post|file_name|file_size" in one read, the acknowledgement
// "nothing", then exactly file_size bytes, into --dir; again until the
// client closes.
// Observe: the header is whatever one read returns. Only the acknowledgement
// keeps the file's first bytes out of it: try `upload-client --no-ack`.
// A refusal is "error: <reason>" in place of "nothing", then the connection closes.
// See also: upload_server_framed.cpp (a header line, no acknowledgement), python/upload_server.py (the seed's).
#include "upload.hpp"

void serve_seed(upload::Session& session) {
  conclab::LineReader reader(session.conn);
  for (;;) {
    const std::string header = reader.read_some(upload::kMaxHeader);  // the seed's conn.recv(1024)
    if (header.empty()) return;                                       // the client is done
    const upload::Request request = session.check(header);
    session.conn.send_all("nothing");  // the seed's signal: "header received, send the bytes"
    session.receive(reader, request);
  }
}

int main(int argc, char** argv) {
  CLI::App app{"Lab 10: the seed's upload server (post|file_name|file_size, then \"nothing\", then the bytes)."};
  upload::ServerFlags flags;
  upload::add_server_flags(app, flags);
  return conclab::run_main(app, argc, argv, [&] { return upload::serve(flags, "seed", "", serve_seed); });
}
