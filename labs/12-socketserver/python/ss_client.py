#!/usr/bin/env python3
"""The seed 004 client of the socketserver servers, in Python 3 (lab 12).

Each line of stdin (stripped; empty lines skipped) is one request: connect,
send it, print what comes back with one recv() of up to 1024 bytes, close.
TCP by default, --udp for ss_udp.py (one datagram out, one back, within
--timeout), --unix PATH for ss_unix.py.

Changes from the seed: the seed's client connects one socket object again
on every line, which fails from the second line on (a socket connects
once): this one makes a connection per line, as the servers expect (one
request per connection). It reads stdin instead of input(">>>:"), skips
empty lines (the server would wait for them forever), prints
`Received: ...` decoded (the seed prints the bytes), and a failure is one
line `error: ...`, exit 1. Plus the flags and the summary line.
"""
import argparse
import pathlib
import socket
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "pycommon"))
from labargs import net_parser  # noqa: E402


def seconds(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}")
    if not 0.001 <= value <= 3600:
        raise argparse.ArgumentTypeError(f"{value:g} not in [0.001 - 3600]")
    return value


def unix_path(text):
    if not 1 <= len(text.encode()) <= 107:
        raise argparse.ArgumentTypeError("a Unix socket path is 1 to 107 bytes")
    return text


def ask(args, data):
    """One request: the answer to `data`."""
    if args.udp:
        family, kind, proto, _, address = socket.getaddrinfo(args.host, args.port, type=socket.SOCK_DGRAM)[0]
        with socket.socket(family, kind, proto) as sock:
            sock.settimeout(args.timeout)
            sock.sendto(data, address)
            return sock.recvfrom(1024)[0]
    if args.unix:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(args.timeout)
        sock.connect(args.unix)
    else:
        sock = socket.create_connection((args.host, args.port), timeout=args.timeout)
    with sock:
        sock.sendall(data)
        return sock.recv(1024)


def main():
    parser = net_parser("Lab 12: sends each line of stdin as a request to a socketserver server, prints the answers.",
                        port=9999, role="connect to")
    parser.add_argument("--udp", action="store_true", help="send datagrams (ss_udp.py) instead of connecting over TCP")
    parser.add_argument("--unix", type=unix_path, help="connect to this Unix socket file (ss_unix.py) instead")
    parser.add_argument("--timeout", type=seconds, default=5.0,
                        help="seconds to wait for a connection or an answer (default %(default)s)")
    args = parser.parse_args()
    if args.udp and args.unix:
        parser.error("--unix excludes --udp")
    sent = received = 0
    for line in sys.stdin.buffer:
        data = line.strip()
        if not data:
            continue  # nothing to send: a TCP server would wait for it forever
        try:
            sent += 1
            answer = ask(args, data)
        except TimeoutError:
            sys.exit(f"error: {'recvfrom' if args.udp else 'recv'}: timed out")
        except OSError as e:
            sys.exit(f"error: {e.strerror or e}")
        received += 1
        print("Received: {}".format(answer.decode(errors="replace")))
    print(f"model=client sent={sent} received={received}")


if __name__ == "__main__":
    main()
