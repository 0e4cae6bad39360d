#!/usr/bin/env python3
"""The seed 003 TCP client in Python 3 (lab 06).

The seed's socket(), connect, sendall, one recv and print, with these
changes: --host/--port (the seed's 127.0.0.1 and 9999 by default); the
strings are UTF-8 bytes on the wire, as in the seed's source file (Python 3
encodes the request and decodes the reply, an invalid byte shown as U+FFFD
where hello_client.cpp writes the raw bytes); a failed connect is one line
`error: connect: ...`, exit 1. Like the seed (`socket.socket()` is IPv4),
it connects over IPv4 only; hello_client.cpp and echo_client.py take IPv6 as
well.
"""
import pathlib
import socket
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "pycommon"))
from labargs import net_parser  # noqa: E402

args = net_parser("Lab 06: the seed 003 TCP client: sends one request and prints the reply.",
                  port=9999, role="connect to").parse_args()
ip_port = (args.host, args.port)

sk = socket.socket()
try:
    sk.connect(ip_port)
except socket.gaierror as e:
    sys.exit(f"error: getaddrinfo: {e.strerror}; {args.host} port {args.port}")
except OSError as e:
    sys.exit(f"error: connect: {e.strerror}; {args.host}:{args.port}")

sk.sendall("请求占领地球".encode())  # 发送数据

server_reply = sk.recv(1024)  # 请求数据
print(server_reply.decode("utf-8", errors="replace"))

sk.close()  # 关闭socket
