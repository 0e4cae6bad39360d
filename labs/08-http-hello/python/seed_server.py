#!/usr/bin/env python3
"""The seed's web server, ported to Python 3 as it is (lab 08) — NOT correct HTTP.

What the seed does, kept here on purpose: it takes one recv() of at most 1024
bytes as "the request" (a longer request, or one that arrives in two pieces,
is cut; a pipelined second request is lost), answers `HTTP/1.1 200 OK` with
no Content-Type and no Content-Length, sends `Hello, World` in a second
send(), and closes: the client learns where the body ends only from the
close, and a keep-alive request (every HTTP/1.1 request) is ignored. The
C++ servers and http_hello.py do it right (the README compares them).

Changes from the seed: Python 3 (bytes on the wire), the flags (--host
localhost and --port 8080 by default, 0: any free port), SO_REUSEADDR (a
restart would otherwise fail for a minute while the last connections sit in
TIME_WAIT), a client that resets no longer kills the server (the seed has no
try), the listening line, SIGINT/SIGTERM stop it with exit 0, and the
summary line.
"""
import pathlib
import socket
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "pycommon"))
from labargs import net_parser, stop_on_signals  # noqa: E402


def handle_request(client):
    buf = client.recv(1024)
    client.send(b"HTTP/1.1 200 OK\r\n\r\n")
    client.send(b"Hello, World")


def main(args):
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((args.host, args.port))
    sock.listen(5)
    served = 0
    try:  # from the listening line on, a stop signal ends the loop, never a traceback
        print("listening on %s:%d" % sock.getsockname())
        while True:
            connection, address = sock.accept()
            served += 1
            try:
                handle_request(connection)
            except OSError:  # a client that reset: the seed would die here
                pass
            connection.close()
    except KeyboardInterrupt:
        pass
    print(f"model=seed served={served}")


if __name__ == "__main__":
    args = net_parser("Lab 08: the seed's web server (not correct HTTP).", port=8080, host="localhost").parse_args()
    stop_on_signals()
    main(args)
