#!/usr/bin/env python3
"""Lab 08's HTTP/1.1 "Hello, World" on one epoll event loop, in Python 3 (lab 11).

The Python original of mux-http-hello: lab 08's python/http_hello.py parses
and answers (read_head, response: imported, not copied), and one
selectors.EpollSelector loop serves every connection. Each connection keeps
what it received in a buffer; a complete head is parsed from that buffer
(io.BytesIO stands in for the socket's file), its body read and thrown away,
and the answers go out as the socket takes them. Idle connections are closed
after --idle-timeout by the loop's own deadline bookkeeping (selectors has no
timers; asyncio's loop.call_later is the same idea). The answers are the same
bytes as the C++ server's.
"""
import io
import pathlib
import selectors
import socket
import sys
import time

HERE = pathlib.Path(__file__).resolve()
sys.path.insert(0, str(HERE.parents[2] / "08-http-hello" / "python"))
sys.path.insert(0, str(HERE.parent))
import http_hello as lab08  # noqa: E402
from muxcommon import bounded_int, create_server, net_parser, stop_on_signals  # noqa: E402

MAX_OUTGOING = 256 << 10


def head_end(data):
    """Where the head of the first request ends (after its empty line), or -1."""
    started = False
    pos = 0
    while True:
        nl = data.find(b"\n", pos)
        if nl < 0:
            return -1
        empty = nl == pos or (nl == pos + 1 and data[pos:nl] == b"\r")
        pos = nl + 1
        if not empty:
            started = True
        elif started:
            return pos


class Conn:
    def __init__(self, sock):
        self.sock = sock
        self.incoming = bytearray()
        self.outgoing = bytearray()
        self.req = lab08.Request()
        self.status = 200
        self.body_left = 0
        self.answered = 0
        self.closing = self.lingering = False
        self.lingered = 0
        self.deadline = 0.0


parser = net_parser("Lab 11: HTTP/1.1 Hello, World, every connection on one epoll loop.", port=8080, host="localhost")
parser.add_argument("--max-header-bytes", type=bounded_int(65536, lower=64), default=8192,
                    help="largest request line + headers; larger: 431 and close (default %(default)s)")
parser.add_argument("--idle-timeout", type=float, default=5.0,
                    help="seconds a connection may stay silent before it is closed (default %(default)s)")
parser.add_argument("--max-requests", type=bounded_int(1_000_000), default=100,
                    help="requests answered on one connection before it is closed (default %(default)s)")
args = parser.parse_args()
if not 0.001 <= args.idle_timeout <= 86400:
    parser.error(f"argument --idle-timeout: {args.idle_timeout} not in [0.001 - 86400]")
stop_on_signals()
listener = create_server(args.host, args.port)
listener.setblocking(False)
sel = selectors.EpollSelector()
sel.register(listener, selectors.EVENT_READ, None)
conns = set()
served = requests = 0


def close(c):
    conns.discard(c)
    sel.unregister(c.sock)
    c.sock.close()


def answer(c):
    global requests
    c.answered += 1
    keep = c.req.keep_alive and c.answered < args.max_requests
    requests += 1
    c.outgoing += lab08.response(c.status, c.req.method == "HEAD",
                                 ("keep-alive" if c.req.http10 else "") if keep else "close")
    c.closing = not keep


def handle_requests(c):
    while not c.closing:
        if c.body_left:  # the body of the current request: thrown away
            n = min(c.body_left, len(c.incoming))
            del c.incoming[:n]
            c.body_left -= n
            if c.body_left:
                return
            answer(c)
            continue
        end = head_end(c.incoming)
        if end < 0 and len(c.incoming) <= args.max_header_bytes:
            return  # wait for the rest of the head
        c.req, c.status = lab08.Request(), 200
        try:
            # A head over the limit is parsed up to it, as lab 08 reads it: what comes first (a bad
            # request line: 400; a HEAD: no body in the answer) counts, then 431.
            complete = 0 <= end <= args.max_header_bytes
            try:
                lab08.read_head(io.BytesIO(bytes(c.incoming[:end if complete else args.max_header_bytes + 1])),
                                args.max_header_bytes, c.req)
            except lab08.ClosedMidRequest:  # cut at the limit in the middle of a line
                raise lab08.Reject(431)
            if not complete:
                raise lab08.Reject(431)
            del c.incoming[:end]
            c.body_left = c.req.content_length
            if c.req.method not in ("GET", "HEAD"):
                c.status = 405
        except lab08.Reject as reject:
            c.status = reject.status
            c.req.keep_alive = False
            c.incoming.clear()
        if not c.body_left:
            answer(c)


def on_ready(c, events):
    if events & selectors.EVENT_READ:
        try:
            data = c.sock.recv(65536)
        except BlockingIOError:
            data = None
        if data == b"":
            return close(c)  # the client closed
        if data and c.lingering:
            c.lingered += len(data)
            if c.lingered > lab08.LINGER_BYTES:
                return close(c)
        elif data:
            c.incoming += data
            c.deadline = time.monotonic() + args.idle_timeout
            handle_requests(c)
    while c.outgoing:
        try:
            sent = c.sock.send(c.outgoing)
        except BlockingIOError:
            break
        del c.outgoing[:sent]
    if c.closing and not c.outgoing and not c.lingering:
        c.sock.shutdown(socket.SHUT_WR)
        c.lingering = True
        c.deadline = time.monotonic() + lab08.LINGER_TIME_S
    read = c.lingering or (not c.closing and len(c.outgoing) < MAX_OUTGOING)
    sel.modify(c.sock, (selectors.EVENT_READ if read else 0) | (selectors.EVENT_WRITE if c.outgoing else 0), c)


try:
    print(f"listening on {lab08.show(listener.getsockname())}")
    while True:
        now = time.monotonic()
        for c in [c for c in conns if c.deadline <= now]:
            close(c)  # silent for --idle-timeout (or done lingering)
        timeout = max(0.0, min(c.deadline for c in conns) - now) if conns else None
        for key, events in sel.select(timeout):
            if key.data is None:
                try:
                    sock, _ = listener.accept()
                except BlockingIOError:
                    continue
                served += 1
                sock.setblocking(False)
                c = Conn(sock)
                c.deadline = time.monotonic() + args.idle_timeout
                conns.add(c)
                sel.register(sock, selectors.EVENT_READ, c)
                continue
            if key.data in conns:
                try:
                    on_ready(key.data, events)
                except OSError:  # reset by the client, or some other failure of this one
                    close(key.data)
except KeyboardInterrupt:
    pass
print(f"model=epoll served={served} requests={requests}")
