#!/usr/bin/env python3
"""The seed's MyTCPHandler on socketserver.ForkingTCPServer, in Python 3 (lab 12).

A child process per request; each request's lines start with the pid of
the child serving it. The parent counts the requests in process_request()
(the children's counters die with them). CPython reaps finished children
in collect_children(), which serve_forever() calls once per turn of its
loop, so a child that has ended stays a zombie until the next turn, up to
the 0.5 s poll interval; conclab reaps each child as it ends.
Changes from the seed: those of ss_tcp.py.
"""
import os
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import socketserver  # noqa: E402
from my_tcp_handler import MyTCPHandler, net_parser, serve_until_stopped, stop_on_signals, who  # noqa: E402


class ForkedHandler(MyTCPHandler):
    """MyTCPHandler, saying first which process serves the request."""

    def setup(self):
        print(f"child {os.getpid()} serves {who(self.client_address)}")


class CountingServer(socketserver.ForkingTCPServer):
    """A ForkingTCPServer that counts the requests it hands to children."""
    served = 0

    def process_request(self, request, client_address):
        self.served += 1
        super().process_request(request, client_address)  # fork; the child runs the handler


if __name__ == "__main__":
    args = net_parser("Lab 12: the seed's MyTCPHandler on ForkingTCPServer (a process per request).",
                      port=9999).parse_args()
    stop_on_signals()
    server = CountingServer((args.host, args.port), ForkedHandler)
    serve_until_stopped(server)
    print(f"model=forking-tcp served={server.served}")
