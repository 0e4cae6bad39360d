#!/usr/bin/env python3
"""The seed's send() and sendall(), side by side, in Python 3 (lab 06).

Not a seed program: the seed only explains that send() returns how many
bytes it sent, possibly fewer than given, and that sendall() tries until all
is sent. This shows it, as send_vs_sendall.cpp does: one large buffer
(--bytes, 64 MiB) to a slow reader thread over a loopback connection, with
one send(), a loop of send() calls, and sendall(). The sending socket has a
timeout (create_connection's), which makes send() write what fits and
return; without one, a send() on Linux waits until everything is written.
"""
import pathlib
import socket
import sys
import threading
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "pycommon"))
from labargs import one_line_parser, bounded_int  # noqa: E402


def slow_read(conn, got):
    """The slow reader: everything until the sender closes, 64 KiB then a pause."""
    while True:
        chunk = conn.recv(64 * 1024)
        if not chunk:
            return
        got[0] += len(chunk)
        time.sleep(0.001)


def over_loopback(server, send):
    """A fresh loopback connection to `server`, a slow reader on the far end and
    `send` sending on the near end: what `send` says it sent, what the reader got."""
    client = socket.create_connection(server.getsockname(), timeout=30)
    conn, peer = server.accept()
    got = [0]
    reader = threading.Thread(target=slow_read, args=(conn, got))
    reader.start()
    try:
        sent = send(client)
    finally:
        client.close()  # the reader sees the end and returns
        reader.join()
        conn.close()
    return sent, got[0]


def send_loop(s):
    global calls
    sent = 0
    view = memoryview(buffer)
    while sent < len(buffer):
        sent += s.send(view[sent:])
        calls += 1
    return sent


def send_all(s):
    s.sendall(buffer)
    return len(buffer)


parser = one_line_parser("Lab 06: one send() against sendall() of a large buffer to a slow reader.")
parser.add_argument("--bytes", type=bounded_int(1 << 30), default=64 << 20,
                    help="how many bytes to send (default %(default)s)")
args = parser.parse_args()
start = time.perf_counter()
buffer = b"x" * args.bytes
server = socket.create_server(("127.0.0.1", 0))

once, got_once = over_loopback(server, lambda s: s.send(buffer))
print(f"send: the kernel took {once} of {args.bytes} bytes; the reader got {got_once}")

calls = 0
looped, got_looped = over_loopback(server, send_loop)
print(f"send loop: {calls} calls took {looped} of {args.bytes} bytes; the reader got {got_looped}")

all_, got_all = over_loopback(server, send_all)
print(f"send_all: took {all_} of {args.bytes} bytes; the reader got {got_all}")

print(f"model=send-vs-sendall bytes={args.bytes} send={once} send_calls={calls} send_all={all_} "
      f"elapsed_s={time.perf_counter() - start:.3f}")
