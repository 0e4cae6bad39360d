#!/usr/bin/env python3
"""The seed's handler on socketserver.UDPServer, in Python 3 (lab 12).

Each datagram is a request: a DatagramRequestHandler reads it from
self.rfile, and what it writes to self.wfile goes back to the sender as one
datagram (CPython sends it even when it is empty; conclab sends nothing
then). The seed's socketserver text names UDPServer; the handler is the
seed's MyTCPHandler for datagrams. Changes from the seed: those of ss_tcp.py.
"""
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import socketserver  # noqa: E402
import my_tcp_handler  # noqa: E402
from my_tcp_handler import count_served, net_parser, print_request, serve_until_stopped, stop_on_signals  # noqa: E402


class MyUDPHandler(socketserver.DatagramRequestHandler):
    def handle(self):
        count_served()
        data = self.rfile.read().strip()
        print_request(self.client_address, data)
        self.wfile.write(data.upper())  # finish() sends it back


if __name__ == "__main__":
    args = net_parser("Lab 12: the seed's handler on UDPServer (a datagram is a request).", port=9999).parse_args()
    stop_on_signals()
    server = socketserver.UDPServer((args.host, args.port), MyUDPHandler)
    serve_until_stopped(server)
    print(f"model=udp served={my_tcp_handler.served}")
