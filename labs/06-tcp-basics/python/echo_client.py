#!/usr/bin/env python3
"""The seed 001 echo client in Python 3 (lab 06).

The seed's getaddrinfo loop, connect, sendall, one recv, with these changes:
--host/--port (the seed's 127.0.0.1 and 10000 by default); the seed's "could
not open socket" says which call failed, as `error: ...`, exit 1; and the
last line. The seed, in Python 2, prints `Received 'Hello, world'`: repr()
of a str. In Python 3 the data is bytes and print("Received", repr(data))
would print `Received b'Hello, world'`. This port prints the seed's line,
repr(data) without the b, which is exactly Python 2's repr of the same bytes
(and what echo_client.cpp prints), whatever bytes come back.
"""
import pathlib
import socket
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "pycommon"))
from labargs import net_parser  # noqa: E402

args = net_parser("Lab 06: the seed 001 echo client: sends 'Hello, world' and prints what comes back.",
                  port=10000, role="connect to").parse_args()

HOST = args.host
PORT = args.port
s = None
tried = []
try:
    infos = socket.getaddrinfo(HOST, PORT, socket.AF_UNSPEC, socket.SOCK_STREAM)
except socket.gaierror as e:
    sys.exit(f"error: getaddrinfo: {e.strerror}; {HOST} port {PORT}")
for res in infos:
    af, socktype, proto, canonname, sa = res
    tried.append(f"[{sa[0]}]:{sa[1]}" if af == socket.AF_INET6 else f"{sa[0]}:{sa[1]}")
    try:
        s = socket.socket(af, socktype, proto)
    except OSError as msg:
        error = msg
        s = None
        continue
    try:
        s.connect(sa)
    except OSError as msg:
        error = msg
        s.close()
        s = None
        continue
    break
if s is None:
    sys.exit(f"error: connect: {error.strerror}; {tried[0] if len(tried) == 1 else 'tried ' + ', '.join(tried)}")
s.sendall(b"Hello, world")
data = s.recv(1024)
s.close()
print("Received", repr(data)[1:])
