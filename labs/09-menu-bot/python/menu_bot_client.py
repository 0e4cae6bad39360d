#!/usr/bin/env python3
"""The seed's client of the "10086" menu bot, in Python 3 (lab 09).

Prints each answer as `receive: <text>`, prompts `please input:`, sends the
line typed and stops after `exit`, reading one answer per line it sends.

Changes from the seed: Python 3 (input() and UTF-8 bytes on the wire), the
port: 8888, where the seed's server listens (the seed's client connects to
8005, a bug), the flags (--timeout is the seed's settimeout(5)), the end of
stdin hangs up cleanly (the seed dies on EOFError), an empty line is not sent
(sendall(b"") sends nothing, and the seed then waits for an answer that never
comes), a line read from a pipe is echoed (a terminal echoes what is typed),
a clear one-line error when the bot hangs up, does not answer in time or
cannot be reached, and the summary line.
"""
import pathlib
import socket
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "pycommon"))
from labargs import net_parser  # noqa: E402
from menu_bot_server import seconds  # noqa: E402


def error(message):
    print(f"error: {message}", file=sys.stderr)
    sys.exit(1)


def main():
    parser = net_parser("Lab 09: talk to the 10086 menu bot, one line of stdin at a time.", port=8888,
                        role="connect to")
    parser.add_argument("--timeout", type=seconds, default=5.0,
                        help="seconds to wait for the bot's answer (default %(default)s)")
    args = parser.parse_args()
    ip_port = (args.host, args.port)
    sk = socket.socket()
    try:
        sk.connect(ip_port)
    except OSError as e:
        error(f"connect: {e.strerror}; {args.host}:{args.port}")
    sk.settimeout(args.timeout)
    echo = not sys.stdin.isatty()
    sent = received = 0
    while True:
        try:
            data = sk.recv(1024)
        except TimeoutError:
            error("recv: timed out")
        except OSError as e:
            error(f"recv: {e.strerror}; {args.host}:{args.port}")
        if not data:
            error("the bot hung up")
        received += 1
        print("receive:", data.decode("utf-8", errors="replace"))
        inp = ""
        while not inp:
            try:
                inp = input("please input:")
            except EOFError:
                print()
                print(f"model=client sent={sent} received={received}")
                sk.close()
                return
            if echo:
                print(inp)
        try:
            sk.sendall(inp.encode())
        except OSError as e:
            error(f"send_all: {e.strerror}; {args.host}:{args.port}")
        sent += 1
        if inp == "exit":
            break
    sk.close()
    print(f"model=client sent={sent} received={received}")


if __name__ == "__main__":
    main()
