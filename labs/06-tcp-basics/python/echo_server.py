#!/usr/bin/env python3
"""The seed 001 echo server in Python 3 (lab 06).

The seed's getaddrinfo loop, bind, listen, accept and echo, with these
changes: --host/--port (the seed's 127.0.0.1 and 10000 by default) and the
`listening on` line; SO_REUSEADDR, as conclab::create_server sets it (a
restart does not wait for the old connections' TIME_WAIT); the seed's
"could not open socket" says which call failed, as `error: ...`, exit 1;
`Connected by HOST:PORT` instead of the tuple; sendall() instead of the
seed's send(), which may send less (see send_vs_sendall.py); the server
goes on to the next client instead of ending after the first, closes a client
silent for --idle-timeout seconds, and stops on SIGINT/SIGTERM with a
summary line, exit 0.
"""
import pathlib
import socket
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "pycommon"))
from labargs import net_parser, stop_on_signals  # noqa: E402


def show(sa):
    """A socket address as conclab prints it: 127.0.0.1:10000, [::1]:10000."""
    host, port = sa[:2]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def seconds(text):
    value = float(text)
    if not 0.001 <= value <= 86400:
        raise ValueError(text)
    return value


parser = net_parser("Lab 06: the seed 001 echo server: sends every chunk back until the client closes.", port=10000)
parser.add_argument("--idle-timeout", type=seconds, default=30.0,
                    help="seconds a client may stay silent before it is closed (default %(default)s)")
args = parser.parse_args()
stop_on_signals()

HOST = args.host
PORT = args.port
s = None
try:
    # HOST "" is every address, as in bind(("", PORT)); getaddrinfo says so with None.
    infos = socket.getaddrinfo(HOST or None, PORT, socket.AF_UNSPEC, socket.SOCK_STREAM, 0, socket.AI_PASSIVE)
except socket.gaierror as e:
    sys.exit(f"error: getaddrinfo: {e.strerror}; {HOST} port {PORT}")
for res in infos:
    af, socktype, proto, canonname, sa = res
    try:
        s = socket.socket(af, socktype, proto)
    except OSError as msg:
        error = f"socket: {msg.strerror}"
        s = None
        continue
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(sa)
        s.listen(5)
    except OSError as msg:
        error = f"bind: {msg.strerror}; {show(sa)}"
        s.close()
        s = None
        continue
    break
if s is None:
    sys.exit(f"error: {error}")

served = echoed = 0
try:
    print("listening on", show(s.getsockname()))
    while True:
        conn, addr = s.accept()
        print("Connected by", show(addr))
        served += 1
        with conn:
            conn.settimeout(args.idle_timeout)
            try:
                while 1:
                    data = conn.recv(1024)
                    if not data:
                        break
                    echoed += len(data)  # counted first: a stop signal may come once the client has it
                    conn.sendall(data)
            except TimeoutError:
                print(f"connection from {show(addr)} closed: idle for {args.idle_timeout:g} s", file=sys.stderr)
            except OSError as e:
                print(f"connection from {show(addr)} ended: {e.strerror}", file=sys.stderr)
except KeyboardInterrupt:
    pass
print(f"model=iterative served={served} bytes={echoed}")
