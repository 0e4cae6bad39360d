// http_hello.hpp — the seed's "Hello, World" web server as correct HTTP/1.1
// (lab 08): the parsing and answering that both servers share, so that
// http_hello_iterative.cpp and http_hello_threaded.cpp differ only in how
// they serve connections (one after the other, or a thread each).
//
// One connection: read a request's head (request line, headers) with a
// LineReader, within --max-header-bytes; read and discard its body; answer;
// keep the connection for the next request (HTTP/1.1) unless the client, the
// version (HTTP/1.0), an error or --max-requests says to close.
// See also: python/http_hello.py (the same server in Python), python/seed_server.py.
#pragma once

#include <fmt/core.h>
#include <sys/socket.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "conclab/cli.hpp"
#include "conclab/socket.hpp"

namespace http_hello {

inline constexpr std::string_view kBody = "Hello, World";  // the seed's answer
inline constexpr std::size_t kMaxBodyBytes = 1 << 20;      // larger request bodies: 413
inline constexpr std::size_t kLingerBytes = 1 << 16;       // read after our last answer, at most
inline constexpr std::chrono::seconds kLingerTime{1};

struct Options {
  int max_header_bytes = 8192;
  double idle_timeout_s = 5;
  int max_requests = 100;
};

inline void add_flags(CLI::App& app, Options& options) {
  app.add_option("--max-header-bytes", options.max_header_bytes,
                 "largest request line + headers; larger: 431 and close")
      ->check(conclab::int_in_range(64, 1 << 20))
      ->capture_default_str();
  app.add_option("--idle-timeout", options.idle_timeout_s, "seconds a connection may stay silent before it is closed")
      ->check(CLI::Range(0.001, 86400.0))
      ->capture_default_str();
  app.add_option("--max-requests", options.max_requests, "requests answered on one connection before it is closed")
      ->check(conclab::int_in_range(1, 1'000'000))
      ->capture_default_str();
}

// A request we answer with an error status and then close the connection.
struct Reject {
  int status;
};

struct Request {
  std::string method;
  bool http10 = false;
  bool keep_alive = true;
  std::size_t content_length = 0;
};

inline std::string_view reason(int status) {
  switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 405: return "Method Not Allowed";
    case 413: return "Content Too Large";
    case 431: return "Request Header Fields Too Large";
    case 501: return "Not Implemented";
    default: return "HTTP Version Not Supported";  // 505
  }
}

// The whole answer. No Date header: the C++ and Python servers answer the
// very same bytes (a real server sends one).
inline std::string response(int status, bool head, std::string_view connection) {
  const std::string_view body = status == 200 ? kBody : reason(status);
  std::string r = fmt::format("HTTP/1.1 {} {}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\n",
                              status, reason(status), body.size());
  if (status == 405) r += "Allow: GET, HEAD\r\n";
  if (!connection.empty()) r += fmt::format("Connection: {}\r\n", connection);
  r += "\r\n";
  if (!head) r += body;
  return r;
}

inline bool is_token(std::string_view s) {  // RFC 9110's token: a method, a header name
  return !s.empty() && std::all_of(s.begin(), s.end(), [](unsigned char c) {
    return std::isalnum(c) || std::string_view("!#$%&'*+-.^_`|~").find(static_cast<char>(c)) != std::string_view::npos;
  });
}

inline bool iequals(std::string_view a, std::string_view b) {
  return std::equal(a.begin(), a.end(), b.begin(), b.end(),
                    [](unsigned char x, unsigned char y) { return std::tolower(x) == std::tolower(y); });
}

inline std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// Whether a comma-separated header value (Connection: keep-alive, Upgrade) holds `token`.
inline bool has_token(std::string_view list, std::string_view token) {
  for (std::size_t start = 0; start <= list.size();) {
    const std::size_t comma = std::min(list.find(',', start), list.size());
    if (iequals(trim(list.substr(start, comma - start)), token)) return true;
    start = comma + 1;
  }
  return false;
}

// One line of a request's head, taken from what is left of the limit;
// nullopt when the client closed before it. A head over the limit is 431.
inline std::optional<std::string> head_line(conclab::LineReader& reader, std::size_t& budget) {
  try {
    auto line = reader.readline(budget);
    if (line) budget -= std::min(budget, line->size() + 2);
    return line;
  } catch (const conclab::ProtocolError&) {
    // readline throws for a line over the limit (more than `budget` bytes
    // wait without an end of line) and for a client that closed in the
    // middle of a line (then fewer wait): only the first one gets an answer.
    if (reader.buffered() > budget) throw Reject{431};
    throw;
  }
}

// Reads one request's head into `req`. False when the client closed between
// requests; throws Reject for a request we refuse, ProtocolError for a
// client that closed in the middle of one.
inline bool read_head(conclab::LineReader& reader, std::size_t limit, Request& req) {
  std::size_t budget = limit;
  std::optional<std::string> line;
  do {  // empty lines before a request are ignored (RFC 9112, 2.2)
    line = head_line(reader, budget);
    if (!line) return false;
  } while (line->empty());

  // The request line: METHOD SP TARGET SP HTTP/1.x
  const std::string_view request_line = *line;
  const std::size_t sp1 = request_line.find(' ');
  const std::size_t sp2 = sp1 == std::string_view::npos ? sp1 : request_line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos || sp2 == sp1 + 1) throw Reject{400};
  const std::string_view version = request_line.substr(sp2 + 1);
  req.method = request_line.substr(0, sp1);
  if (!is_token(req.method) || version.find(' ') != std::string_view::npos) throw Reject{400};
  if (version.size() != 8 || !version.starts_with("HTTP/") || !std::isdigit(static_cast<unsigned char>(version[5])) ||
      version[6] != '.' || !std::isdigit(static_cast<unsigned char>(version[7])))
    throw Reject{400};
  if (version[5] != '1') throw Reject{505};
  req.http10 = version == "HTTP/1.0";

  // The headers, up to the empty line.
  std::string connection;
  std::optional<std::string> content_length;
  int hosts = 0;
  for (;;) {
    line = head_line(reader, budget);
    if (!line) throw conclab::ProtocolError("the client closed in the middle of a request");
    if (line->empty()) break;
    const std::string_view header = *line;
    const std::size_t colon = header.find(':');
    if (colon == std::string_view::npos || !is_token(header.substr(0, colon))) throw Reject{400};
    const std::string_view name = header.substr(0, colon);
    const std::string_view value = trim(header.substr(colon + 1));
    if (iequals(name, "Connection")) {
      connection += fmt::format("{},", value);
    } else if (iequals(name, "Host")) {
      ++hosts;
    } else if (iequals(name, "Transfer-Encoding")) {
      throw Reject{501};  // a chunked body: not for this small server
    } else if (iequals(name, "Content-Length")) {
      if (value.empty() || !std::all_of(value.begin(), value.end(), [](unsigned char c) { return std::isdigit(c); }) ||
          (content_length && *content_length != value))
        throw Reject{400};
      content_length = value;
    }
  }
  if (hosts > 1 || (hosts == 0 && !req.http10)) throw Reject{400};  // HTTP/1.1 requires exactly one Host
  if (content_length) {
    for (const char c : *content_length)  // saturates: any longer number is "too large"
      req.content_length = std::min(req.content_length * 10 + static_cast<std::size_t>(c - '0'), kMaxBodyBytes + 1);
    if (req.content_length > kMaxBodyBytes) throw Reject{413};
  }
  req.keep_alive = req.http10 ? has_token(connection, "keep-alive") && !has_token(connection, "close")
                              : !has_token(connection, "close");
  return true;
}

// Closes our side after the last answer the way HTTP servers must ("lingering
// close"): FIN first, then read what the client still sends until it closes
// (bounded). Closing with unread bytes would send an RST instead, and an RST
// can destroy our answer in the client's buffers before it reads it.
inline void linger_close(conclab::Socket& conn, conclab::LineReader& reader) {
  conn.shutdown(SHUT_WR);
  const auto until = std::chrono::steady_clock::now() + kLingerTime;
  for (std::size_t drained = 0; drained < kLingerBytes;) {
    const auto left = until - std::chrono::steady_clock::now();
    if (left <= decltype(left)::zero()) break;
    conn.settimeout(left);
    const std::string data = reader.read_some(4096);
    if (data.empty()) break;
    drained += data.size();
  }
  conn.close();
}

// Answers the requests of one connection until it is closed; adds one to
// `answered` per answer. Lets conclab::Interrupted through (the server stops).
template <class Counter>
void serve_connection(conclab::Socket& conn, const Options& options, Counter& answered) {
  conn.settimeout(std::chrono::duration<double>(options.idle_timeout_s));
  conclab::LineReader reader(conn);
  try {
    for (int n = 1;; ++n) {
      Request req;
      int status = 200;
      try {
        if (!read_head(reader, static_cast<std::size_t>(options.max_header_bytes), req)) return;  // client closed
        for (std::size_t left = req.content_length; left > 0;) {  // the body: read and thrown away
          const std::size_t got = reader.read_some(std::min<std::size_t>(left, 65536)).size();
          if (got == 0) return;  // the client closed in the middle of the body
          left -= got;
        }
        if (req.method != "GET" && req.method != "HEAD") status = 405;
      } catch (const Reject& reject) {
        status = reject.status;
        req.keep_alive = false;
      }
      const bool keep = req.keep_alive && n < options.max_requests;
      ++answered;
      conn.send_all(response(status, req.method == "HEAD", keep ? (req.http10 ? "keep-alive" : "") : "close"));
      if (!keep) return linger_close(conn, reader);
    }
  } catch (const conclab::TimeoutError&) {
    // idle for --idle-timeout (or a client that does not read our answers): close
  } catch (const conclab::SocketError&) {
    // reset by the client, or some other failure of this one connection
  } catch (const conclab::ProtocolError&) {
    // closed in the middle of a request
  }
}

}  // namespace http_hello
