// fanout.hpp — the request/response protocol of the client fan-out
// benchmark (W. R. Stevens, UNIX Network Programming vol. 1, 3rd ed.,
// chapter 30, "Client/Server Design Alternatives"), shared by fanout-server,
// fanout-client and conclab-bench's fanout/ rows.
//
// One request per connection: the client connects and sends an ASCII
// decimal byte count and a newline ("4000\n"); the server answers with
// exactly that many bytes; the client closes first (so its side, not the
// server's, keeps the TIME_WAIT). A count that is not a decimal in
// [1, max_bytes], or a line longer than kMaxRequestLine, is refused: the
// server closes the connection and carries on.
//
//   conn.send_all(fanout::request(4000));                       // client
//   auto count = fanout::parse_count(line, options.max_bytes);  // server
//   if (count) conn.send_all(fanout::reply(*count));
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace conclab::fanout {

// The largest count a server answers by default (the book's MAXN).
inline constexpr int kDefaultMaxBytes = 16384;
// The largest count any server may be configured to answer (--max-bytes).
inline constexpr int kLargestMaxBytes = 1 << 20;
// A request line is at most this long, newline included ("1048576\n" is 8).
inline constexpr std::size_t kMaxRequestLine = 16;

// The request for `bytes` bytes: "4000\n".
std::string request(int bytes);

// The count of a request line (without its newline, a "\r" before it
// allowed), or nullopt when it is not a plain decimal in [1, max_bytes]:
// no sign, no spaces, no leading zeros beyond "0" itself (which is refused).
std::optional<int> parse_count(std::string_view line, int max_bytes);

// The first `bytes` bytes of the reply pattern (a fixed, repeating text the
// client may check), 0 <= bytes <= kLargestMaxBytes; a view of static data.
std::string_view reply(int bytes);

}  // namespace conclab::fanout
