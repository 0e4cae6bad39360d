#!/usr/bin/env python3
"""The seed 003 UDP server on port 9999 in Python 3 (lab 07).

The seed's socket(AF_INET, SOCK_DGRAM), bind and receive loop, with these
changes: --host/--port (the seed's 127.0.0.1 and 9999 by default) and the
`listening on` line; each datagram is printed with its sender (the seed's
recv() does not say who sent it), as text decoded from UTF-8 (an invalid
byte shown as U+FFFD, where server.cpp writes the raw bytes), an empty one as
`(empty datagram)`; SIGINT/SIGTERM stop it with a summary line, exit 0.

The seed's sk.recv(1024) cuts a longer datagram to 1024 bytes without a
word, and so does recvfrom(1024). This port asks the kernel for the real
length (MSG_TRUNC: recvfrom_into then returns the datagram's full size) and
reports a truncated datagram as server.cpp does. The buffer size is
--bufsize (1024, the seed's, by default). Like the seed it listens on IPv4
only; server.cpp takes IPv6 as well.
"""
import pathlib
import socket
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "pycommon"))
from labargs import bounded_int, net_parser, stop_on_signals  # noqa: E402

parser = net_parser("Lab 07: the seed 003 UDP server: prints each datagram and who sent it.", port=9999)
parser.add_argument("--bufsize", type=bounded_int(65536), default=1024,
                    help="bytes of a datagram kept; the rest is reported as truncated (default %(default)s)")
args = parser.parse_args()
stop_on_signals()

ip_port = (args.host, args.port)
try:
    sk = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, 0)
    sk.bind(ip_port)
except socket.gaierror as e:
    sys.exit(f"error: getaddrinfo: {e.strerror}; {args.host} port {args.port}")
except OSError as e:
    sys.exit(f"error: bind: {e.strerror}; {args.host}:{args.port}")

buffer = bytearray(args.bufsize)
received = truncated = 0
try:
    print("listening on {}:{}".format(*sk.getsockname()))
    while True:
        size, (host, port) = sk.recvfrom_into(buffer, args.bufsize, socket.MSG_TRUNC)
        data = bytes(buffer[:min(size, args.bufsize)])
        received += 1
        print(f"from {host}:{port}: {data.decode('utf-8', errors='replace') if data else '(empty datagram)'}")
        if size > args.bufsize:
            truncated += 1
            print(f"truncated: {size} bytes, kept {len(data)}")
except KeyboardInterrupt:
    pass
print(f"model=udp received={received} truncated={truncated}")
