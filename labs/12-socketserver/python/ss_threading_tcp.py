#!/usr/bin/env python3
"""The seed's MyTCPHandler on socketserver.ThreadingTCPServer, in Python 3 (lab 12).

A thread per request: ss_tcp.py with one line changed (the seed 004:
"change TCPServer to ThreadingTCPServer"). The handler is in
my_tcp_handler.py (its docstring says what differs from the seed, and why
the threads are daemon threads). Changes from the seed: --host/--port (127.0.0.1 and the seed
004's 9999 by default; the seed 001 says localhost and 10000), the listening
line, SIGINT/SIGTERM stop it with exit 0 and the summary line.
"""
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import socketserver  # noqa: E402
from my_tcp_handler import MyTCPHandler, net_parser, serve_until_stopped, stop_on_signals  # noqa: E402
import my_tcp_handler  # noqa: E402

if __name__ == "__main__":
    args = net_parser("Lab 12: the seed's MyTCPHandler on ThreadingTCPServer (a thread per request).", port=9999).parse_args()
    HOST, PORT = args.host, args.port
    stop_on_signals()
    server = socketserver.ThreadingTCPServer((HOST, PORT), MyTCPHandler)
    serve_until_stopped(server)
    print(f"model=threading-tcp served={my_tcp_handler.served}")
