#!/usr/bin/env python3
"""The seed's MyTCPHandler on socketserver.UnixStreamServer, in Python 3 (lab 12).

The same stream handler on a Unix-domain socket file (--path). CPython's
server_close() closes the socket but leaves the file behind: the next
bind() on that path fails with "Address already in use". So this program,
as Python programs usually do, removes a stale socket file before it binds
(a file that is not a socket is left alone: bind() then fails), and still
leaves its own file behind when it stops, as CPython does; conclab's
server_close() removes it. Changes from the seed: those of ss_tcp.py.
"""
import argparse
import os
import pathlib
import stat
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import socketserver  # noqa: E402
import my_tcp_handler  # noqa: E402
from my_tcp_handler import MyTCPHandler, serve_until_stopped, stop_on_signals  # noqa: E402
from labargs import one_line_parser  # noqa: E402


def unix_path(text):
    """An argparse type: a path that fits in sockaddr_un (1 to 107 bytes)."""
    if not 1 <= len(os.fsencode(text)) <= 107:
        raise argparse.ArgumentTypeError("a Unix socket path is 1 to 107 bytes")
    return text


if __name__ == "__main__":
    parser = one_line_parser("Lab 12: the seed's MyTCPHandler on UnixStreamServer (a socket file).")
    parser.add_argument("--path", type=unix_path, default="/tmp/ss-unix.sock",
                        help="the socket file to listen on (default %(default)s)")
    args = parser.parse_args()
    stop_on_signals()
    try:
        if stat.S_ISSOCK(os.stat(args.path).st_mode):
            os.unlink(args.path)  # a previous run's file (CPython does not remove it)
    except FileNotFoundError:
        pass
    server = socketserver.UnixStreamServer(args.path, MyTCPHandler)
    serve_until_stopped(server)
    print(f"model=unix served={my_tcp_handler.served}")
