#!/usr/bin/env python3
"""The seed 003 TCP server on port 9999 in Python 3 (lab 06).

The seed's socket(), bind, listen and accept loop, with these changes:
--host/--port (the seed's 127.0.0.1 and 9999 by default) and the
`listening on` line; SO_REUSEADDR, as conclab::create_server sets it
(without it, a restart within a minute of serving a client fails with
`Address already in use`: the server closed first, so its side of each
connection waits in TIME_WAIT); the request is printed as text (decoded from
UTF-8, an invalid byte shown as U+FFFD, where hello_server.cpp writes the
raw bytes), and the reply is UTF-8 as the seed's source file; a client that
closes without a request is told on stderr instead of printing an empty line
and answering a closed socket; a client silent for --idle-timeout seconds is
closed; SIGINT/SIGTERM stop it with a summary line, exit 0. Like the seed
(`socket.socket()` is IPv4), it listens on IPv4 only; hello_server.cpp and
echo_server.py take IPv6 as well.
"""
import pathlib
import socket
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "pycommon"))
from labargs import net_parser, stop_on_signals  # noqa: E402


def show(sa):
    """A socket address as conclab prints it: 127.0.0.1:9999."""
    return f"{sa[0]}:{sa[1]}"


def seconds(text):
    value = float(text)
    if not 0.001 <= value <= 86400:
        raise ValueError(text)
    return value


parser = net_parser("Lab 06: the seed 003 TCP server: prints each request, answers and closes.", port=9999)
parser.add_argument("--idle-timeout", type=seconds, default=30.0,
                    help="seconds a client may stay silent before it is closed (default %(default)s)")
args = parser.parse_args()
stop_on_signals()

ip_port = (args.host, args.port)
try:
    sk = socket.socket()
    sk.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sk.bind(ip_port)
    sk.listen(5)
except socket.gaierror as e:
    sys.exit(f"error: getaddrinfo: {e.strerror}; {args.host} port {args.port}")
except OSError as e:
    sys.exit(f"error: bind: {e.strerror}; {show(ip_port)}")

served = 0
try:
    print("listening on", show(sk.getsockname()))
    while True:
        print("server waiting...")
        conn, addr = sk.accept()
        served += 1
        with conn:
            conn.settimeout(args.idle_timeout)
            try:
                client_data = conn.recv(1024)
                if not client_data:
                    print(f"connection from {show(addr)} closed before a request", file=sys.stderr)
                    continue
                print(client_data.decode("utf-8", errors="replace"))
                conn.sendall("不要回答,不要回答,不要回答".encode())
            except TimeoutError:
                print(f"connection from {show(addr)} closed: idle for {args.idle_timeout:g} s", file=sys.stderr)
            except OSError as e:
                print(f"connection from {show(addr)} ended: {e.strerror}", file=sys.stderr)
except KeyboardInterrupt:
    pass
print(f"model=iterative served={served}")
