"""What the Python originals of lab 11 share: the flags, the seed 001 loop
that opens a listening socket (errors worded as the C++ programs word them),
and addresses printed as conclab prints them."""
import pathlib
import socket
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "pycommon"))
from labargs import bounded_int, net_parser, stop_on_signals  # noqa: E402,F401

MAX_QUEUED = 256 << 10  # a client that does not read: stop reading it
FD_SETSIZE = 1024  # select() cannot watch a descriptor at or above it (Python raises ValueError, for every socket)


def too_high_for_select(conn, told=[]):
    """Whether select() cannot watch `conn`; says so once on stderr, as conclab's Selector does."""
    if conn.fileno() < FD_SETSIZE:
        return False
    if not told:
        print(f"select: descriptor {conn.fileno()} is not below FD_SETSIZE ({FD_SETSIZE}); select() cannot watch "
              "it, use poll or epoll; dropping such connections", file=sys.stderr)
        told.append(True)
    return True


def show(sa):
    """A socket address as conclab prints it: 127.0.0.1:8002, [::1]:8002."""
    host, port = sa[:2]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def echo_parser(description):
    return net_parser(description, port=8002)


def create_server(host, port):
    """The first address of getaddrinfo(host, port) that binds and listens; else `error: ...`, exit 1."""
    try:
        infos = socket.getaddrinfo(host or None, port, socket.AF_UNSPEC, socket.SOCK_STREAM, 0, socket.AI_PASSIVE)
    except socket.gaierror as e:
        sys.exit(f"error: getaddrinfo: {e.strerror}; {host} port {port}")
    error = None
    for family, type_, proto, _, sa in infos:
        s = socket.socket(family, type_, proto)
        try:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(sa)
            s.listen(socket.SOMAXCONN)
            return s
        except OSError as e:
            error = f"bind: {e.strerror}; {show(sa)}"
            s.close()
    sys.exit(f"error: {error}")
