#!/usr/bin/env python3
"""The seed's web server made correct HTTP/1.1, in Python 3 with socket only (lab 08).

Not the seed's program (that is seed_server.py): the Python original of
http-hello-iterative, answering byte for byte what the C++ servers answer, so
that the two can be compared on the wire. One connection at a time, like the
seed: read each request's head (request line and headers, at most
--max-header-bytes, else 431 and close; a malformed request line: 400 and
close), read and throw away its body (Content-Length), answer GET and HEAD
with `Hello, World` (any other method: 405), with Content-Type and
Content-Length, and keep the connection for the next request as HTTP/1.1
says (HTTP/1.0: only with `Connection: keep-alive`; `Connection: close`
closes). A connection silent for --idle-timeout seconds is closed; one that
reaches --max-requests is closed after its last answer, so that a busy
keep-alive client cannot hold this one-at-a-time server for ever. No Date
header, so that the answers of both servers are the same bytes.
"""
import pathlib
import socket
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "pycommon"))
from labargs import bounded_int, net_parser, stop_on_signals  # noqa: E402

BODY = b"Hello, World"
MAX_BODY_BYTES = 1 << 20
LINGER_BYTES = 1 << 16
LINGER_TIME_S = 1.0
REASONS = {200: "OK", 400: "Bad Request", 405: "Method Not Allowed", 413: "Content Too Large",
           431: "Request Header Fields Too Large", 501: "Not Implemented", 505: "HTTP Version Not Supported"}
TCHARS = set("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
DIGITS = set("0123456789")


class Reject(Exception):
    """A request answered with an error status, then the connection is closed."""

    def __init__(self, status):
        super().__init__(status)
        self.status = status


class ClosedMidRequest(Exception):
    pass


class Request:
    def __init__(self):
        self.method = ""
        self.http10 = False
        self.keep_alive = True
        self.content_length = 0


def response(status, head, connection):
    body = BODY if status == 200 else REASONS[status].encode()
    r = (f"HTTP/1.1 {status} {REASONS[status]}\r\nContent-Type: text/plain; charset=utf-8\r\n"
         f"Content-Length: {len(body)}\r\n")
    if status == 405:
        r += "Allow: GET, HEAD\r\n"
    if connection:
        r += f"Connection: {connection}\r\n"
    r += "\r\n"
    return r.encode() + (b"" if head else body)


def is_token(s):
    return s != "" and all(c in TCHARS for c in s)


def has_token(value_list, token):
    return any(item.strip(" \t").lower() == token for item in value_list.split(","))


def head_line(rfile, budget):
    """One line of a request's head and what is left of the limit; None at the end of the stream."""
    line = rfile.readline(budget[0] + 1)
    if not line:
        return None
    if not line.endswith(b"\n"):
        if len(line) > budget[0]:
            raise Reject(431)
        raise ClosedMidRequest()
    line = line[:-1]
    if line.endswith(b"\r"):
        line = line[:-1]
    budget[0] -= min(budget[0], len(line) + 2)
    return line.decode("latin-1")


def read_head(rfile, limit, req):
    budget = [limit]
    while True:  # empty lines before a request are ignored (RFC 9112, 2.2)
        line = head_line(rfile, budget)
        if line is None:
            return False
        if line:
            break
    sp1 = line.find(" ")
    sp2 = -1 if sp1 < 0 else line.find(" ", sp1 + 1)
    if sp2 < 0 or sp2 == sp1 + 1:
        raise Reject(400)
    version = line[sp2 + 1:]
    req.method = line[:sp1]
    if not is_token(req.method) or " " in version:
        raise Reject(400)
    if (len(version) != 8 or not version.startswith("HTTP/") or version[5] not in DIGITS or version[6] != "."
            or version[7] not in DIGITS):
        raise Reject(400)
    if version[5] != "1":
        raise Reject(505)
    req.http10 = version == "HTTP/1.0"

    connection = ""
    content_length = None
    hosts = 0
    while True:
        line = head_line(rfile, budget)
        if line is None:
            raise ClosedMidRequest()
        if not line:
            break
        name, colon, value = line.partition(":")
        if not colon or not is_token(name):
            raise Reject(400)
        value = value.strip(" \t")
        name = name.lower()
        if name == "connection":
            connection += value + ","
        elif name == "host":
            hosts += 1
        elif name == "transfer-encoding":
            raise Reject(501)  # a chunked body: not for this small server
        elif name == "content-length":
            if not value or not all(c in DIGITS for c in value) or (content_length is not None
                                                                       and content_length != value):
                raise Reject(400)
            content_length = value
    if hosts > 1 or (hosts == 0 and not req.http10):
        raise Reject(400)  # HTTP/1.1 requires exactly one Host
    if content_length is not None:
        req.content_length = int(content_length)
        if req.content_length > MAX_BODY_BYTES:
            raise Reject(413)
    if req.http10:
        req.keep_alive = has_token(connection, "keep-alive") and not has_token(connection, "close")
    else:
        req.keep_alive = not has_token(connection, "close")
    return True


def linger_close(conn, rfile):
    """FIN first, then read what the client still sends until it closes (bounded): closing
    with unread bytes would send an RST, which can destroy our answer before the client reads it."""
    conn.shutdown(socket.SHUT_WR)
    until = time.monotonic() + LINGER_TIME_S
    drained = 0
    while drained < LINGER_BYTES:
        left = until - time.monotonic()
        if left <= 0:
            break
        conn.settimeout(left)
        data = rfile.read1(4096)
        if not data:
            break
        drained += len(data)


def serve_connection(conn, args, answered):
    """Answers the requests of one connection until it is closed; adds one to answered[0] per answer."""
    conn.settimeout(args.idle_timeout)
    rfile = conn.makefile("rb")
    try:
        n = 1
        while True:
            req = Request()
            status = 200
            try:
                if not read_head(rfile, args.max_header_bytes, req):
                    return
                left = req.content_length
                while left > 0:  # the body: read and thrown away
                    got = len(rfile.read1(min(left, 65536)))
                    if got == 0:
                        return
                    left -= got
                if req.method not in ("GET", "HEAD"):
                    status = 405
            except Reject as reject:
                status = reject.status
                req.keep_alive = False
            keep = req.keep_alive and n < args.max_requests
            answered[0] += 1  # before sending: once the client has the answer, it is counted
            conn.sendall(response(status, req.method == "HEAD", ("keep-alive" if req.http10 else "") if keep else "close"))
            if not keep:
                linger_close(conn, rfile)
                return
            n += 1
    except (OSError, ClosedMidRequest):  # idle (TimeoutError), reset, closed mid-request
        pass
    finally:
        rfile.close()
        conn.close()


def create_server(host, port):
    """The seed 001 loop: the first address of getaddrinfo that binds and listens."""
    error = None
    for family, type_, proto, _, address in socket.getaddrinfo(host, port, socket.AF_UNSPEC, socket.SOCK_STREAM, 0,
                                                               socket.AI_PASSIVE):
        sock = socket.socket(family, type_, proto)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(address)
            sock.listen()
            return sock
        except OSError as e:
            error = e
            sock.close()
    raise error


def show(address):
    host, port = address[:2]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def main():
    parser = net_parser("Lab 08: HTTP/1.1 Hello, World, serving one connection at a time.", port=8080, host="localhost")
    parser.add_argument("--max-header-bytes", type=bounded_int(1 << 20, lower=64), default=8192,
                        help="largest request line + headers; larger: 431 and close (default %(default)s)")
    parser.add_argument("--idle-timeout", type=float, default=5.0,
                        help="seconds a connection may stay silent before it is closed (default %(default)s)")
    parser.add_argument("--max-requests", type=bounded_int(1_000_000), default=100,
                        help="requests answered on one connection before it is closed (default %(default)s)")
    args = parser.parse_args()
    if not 0.001 <= args.idle_timeout <= 86400:
        parser.error(f"argument --idle-timeout: {args.idle_timeout} not in [0.001 - 86400]")
    stop_on_signals()
    try:
        server = create_server(args.host, args.port)
    except OSError as e:
        print(f"error: {e.strerror or e}", file=sys.stderr)
        sys.exit(1)
    served = 0
    requests = [0]
    try:  # from the listening line on, a stop signal ends the loop, never a traceback
        print(f"listening on {show(server.getsockname())}")
        while True:
            conn, _ = server.accept()
            served += 1
            serve_connection(conn, args, requests)
    except KeyboardInterrupt:
        pass
    print(f"model=iterative served={served} requests={requests[0]}")


if __name__ == "__main__":
    main()
