#!/usr/bin/env python3
"""The seed's "10086" menu bot server, one caller at a time, in Python 3 (lab 09).

The seed's first server: accept a caller, greet it, answer each recv() until
it says exit, close, accept the next. A second caller waits, connected but
not greeted, until the first one has left. Each recv() is taken as one
message, as in the seed (no framing: the README's "sticky packets").

Changes from the seed: Python 3 (the strings are sent as UTF-8 bytes), the
flags (--port 8888 by default, 0: any free port), SO_REUSEADDR (a restart
would otherwise fail for a minute), the listening line, a `connection from`
line per caller (the seed's select+thread example prints its address), the
summary line, SIGINT/SIGTERM stop it with exit 0, and what the seed gets
wrong: a caller that hangs up without exit (recv() returns b"", which the
seed answers with 请重新输入. until sending fails and the exception kills
the server), that resets, or that stays silent for --idle-timeout seconds
(the seed waits for ever) ends its call, not the server. The conversation is
the function process(), as in the seed's select+thread example, so that
menu_bot_threaded.py runs the very same one in its threads.
"""
import argparse
import pathlib
import socket
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "pycommon"))
from labargs import net_parser, stop_on_signals  # noqa: E402

GREETING = "欢迎致电 10086,请输入1xxx,0转人工服务.".encode()
OPERATOR = "通过可能会被录音.balabala一大推".encode()
TRY_AGAIN = "请重新输入.".encode()


def show(address):
    host, port = address[:2]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def seconds(text):
    """An argparse type: a number of seconds in [0.001, 86400]."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}")
    if not 0.001 <= value <= 86400:
        raise argparse.ArgumentTypeError(f"{value:g} not in [0.001 - 86400]")
    return value


def server_args(description):
    parser = net_parser(description, port=8888)
    parser.add_argument("--idle-timeout", type=seconds, default=60.0,
                        help="seconds a caller may stay silent before the bot hangs up (default %(default)s)")
    return parser.parse_args()


def listen(args):
    sk = socket.socket()
    sk.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sk.bind((args.host, args.port))
    sk.listen(5)
    print(f"listening on {show(sk.getsockname())}")
    return sk


def process(request, client_address, idle_timeout):
    conn = request
    conn.settimeout(idle_timeout)
    try:
        conn.sendall(GREETING)
        flag = True
        while flag:
            data = conn.recv(1024)
            if data == b"exit":
                flag = False
            elif not data:
                print(f"{show(client_address)} hung up without saying exit")
                flag = False
            elif data == b"0":
                conn.sendall(OPERATOR)
            else:
                conn.sendall(TRY_AGAIN)
    except TimeoutError:
        print(f"{show(client_address)} silent for {idle_timeout:g} s: hung up")
    except OSError as e:
        print(f"{show(client_address)} lost: {e.strerror}")
    conn.close()


def main():
    args = server_args("Lab 09: the 10086 menu bot, one caller at a time.")
    stop_on_signals()
    served = 0
    try:  # from the listening line on, a stop signal ends the loop, never a traceback
        sk = listen(args)
        while True:
            conn, address = sk.accept()
            served += 1
            print(f"connection from {show(address)}")
            process(conn, address, args.idle_timeout)
    except KeyboardInterrupt:
        pass
    print(f"model=iterative served={served}")


if __name__ == "__main__":
    main()
