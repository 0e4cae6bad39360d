#!/usr/bin/env python3
"""The seed 003 UDP client in Python 3 (lab 07).

The seed's loop: read a line, strip it, stop at `exit`, sendto() the rest,
with these changes: --host/--port (the seed's 127.0.0.1 and 9999 by
default), resolved once before the loop (so a bad host fails at once); the
end of stdin ends it too (the seed dies with EOFError); the prompt 数据: only
when stdin is a terminal (piped in, the prompts would run together on one
line); strip() strips ASCII blanks only, as the seed's Python 2 str.strip()
and client.cpp do (Python 3's strip() also takes Unicode spaces such as
U+3000); the lines are sent as UTF-8; a summary line at the end. An empty
line is sent, as in the seed, as an empty datagram. Like the seed it sends
over IPv4 only; client.cpp takes IPv6 as well.
"""
import pathlib
import socket
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "pycommon"))
from labargs import net_parser  # noqa: E402

args = net_parser("Lab 07: the seed 003 UDP client: sends each line of stdin as a datagram until 'exit'.",
                  port=9999, role="send to").parse_args()
try:
    ip_port = socket.getaddrinfo(args.host, args.port, socket.AF_INET, socket.SOCK_DGRAM)[0][4]
except socket.gaierror as e:
    sys.exit(f"error: getaddrinfo: {e.strerror}; {args.host} port {args.port}")

sk = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, 0)
prompt = "数据:" if sys.stdin.isatty() else ""
sent = sent_bytes = 0
while True:
    try:
        inp = input(prompt).strip(" \t\n\r\f\v")
    except EOFError:
        break
    if inp == 'exit':
        break
    data = inp.encode()
    try:
        sk.sendto(data, ip_port)
    except OSError as e:  # a line longer than a datagram can be: Message too long
        sys.exit(f"error: sendto: {e.strerror}; {ip_port[0]}:{ip_port[1]}")
    sent += 1
    sent_bytes += len(data)

sk.close()
print(f"model=udp-client sent={sent} bytes={sent_bytes}")
