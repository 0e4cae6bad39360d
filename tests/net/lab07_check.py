#!/usr/bin/env python3
"""Checks of lab 07 (UDP): the C++ server and client and their Python
originals against each other, datagram for datagram.

    lab07_check.py BIN_DIR PYTHON_DIR COMMAND [ARGS]

    interop LANG     the server in LANG (cpp|python) gets the lines of both
                     clients and of a raw sender, and prints exactly their text
    client-wire      both clients against a raw receiver: the same datagrams
    truncation LANG  a datagram larger than --bufsize is reported, not cut silently
    descriptors LANG many datagrams, then the same descriptors as before
    signals LANG     SIGINT and SIGTERM: exit 0 and the right counts
    errors           port in use, a host that does not resolve
"""
import pathlib
import re
import signal
import socket
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
import netlib  # noqa: E402
from netlib import Server, check, run_client  # noqa: E402

BIN = pathlib.Path(sys.argv[1])
PY = pathlib.Path(sys.argv[2])

# What a student might type: blanks around (stripped), an empty line (sent
# empty), UTF-8 with ideographic spaces (U+3000: not a blank to the seed's
# Python 2 strip()), then `exit` (nothing after it is sent).
TYPED = "hello\n  spaced out \t\n\n中文 text\n\u3000全角\u3000\nexit\nnever sent\n".encode()
SENT = [b"hello", b"spaced out", b"", "中文 text".encode(), "\u3000全角\u3000".encode()]


def prog(lang, name):
    if lang == "cpp":
        return [BIN / f"udp-{name}"]
    return [sys.executable, PY / f"{name}.py"]


def shown(data):
    return data.decode() if data else "(empty datagram)"


def norm(lines):
    return [re.sub(r"127\.0\.0\.1:\d+", "127.0.0.1:#", line) for line in lines]


class Sender:
    """Raw datagrams to a server, and a marker to know that all before it arrived."""

    def __init__(self, server):
        self.server = server
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.markers = 0

    def send(self, data):
        self.sock.sendto(data, ("127.0.0.1", self.server.port))

    def sync(self):
        """Send a marker and wait until the server printed it (datagrams from one
        host on loopback arrive in the order they were sent)."""
        self.markers += 1
        marker = f"marker {self.markers}"
        self.send(marker.encode())
        return self.server.wait_line(lambda line: line.endswith(": " + marker), what=marker)

    def close(self):
        self.sock.close()


def client_ok(lang, port, typed, sent):
    r = run_client(prog(lang, "client") + ["--port", str(port)], input=typed)
    want = f"model=udp-client sent={len(sent)} bytes={sum(map(len, sent))}\n".encode()
    check(r.stdout == want, f"{lang} client printed {r.stdout!r}, expected {want!r}")
    check(r.stderr == b"", f"{lang} client: stderr {r.stderr!r}")


def interop(lang):
    raw = [b"raw  text\twith blanks ", b"", "全角\u3000空格".encode()]
    with Server(prog(lang, "server") + ["--port", "0"]) as server:
        sender = Sender(server)
        for client_lang in ("cpp", "python"):
            client_ok(client_lang, server.port, TYPED, SENT)
        for client_lang in ("cpp", "python"):  # the end of stdin ends it too; `exit` at once sends nothing
            client_ok(client_lang, server.port, b"no exit\n  \n", [b"no exit", b""])
            client_ok(client_lang, server.port, b"exit\n", [])
        for data in raw:
            sender.send(data)
        sender.sync()
        sender.close()
        server.stop()
    lines = norm(server.output())
    datagrams = SENT * 2 + [b"no exit", b""] * 2 + raw + [b"marker 1"]
    want = ["listening on 127.0.0.1:#"] + [f"from 127.0.0.1:#: {shown(d)}" for d in datagrams]
    want += [f"model=udp received={len(datagrams)} truncated=0"]
    check(lines == want, f"{server.name} printed {lines}, expected {want}")
    check(server.errors() == [], f"{server.name}: stderr {server.errors()}")


def client_wire():
    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    receiver.bind(("127.0.0.1", 0))
    receiver.settimeout(netlib.TIMEOUT_S)
    for lang in ("cpp", "python"):
        client_ok(lang, receiver.getsockname()[1], TYPED, SENT)
        got = [receiver.recvfrom(65536)[0] for _ in SENT]
        check(got == SENT, f"{lang} client sent {got}, expected {SENT}")
    receiver.setblocking(False)
    try:
        extra = receiver.recv(65536)
        check(False, f"a datagram after 'exit' or too many: {extra!r}")
    except BlockingIOError:
        pass
    receiver.close()


def truncation(lang):
    with Server(prog(lang, "server") + ["--port", "0"]) as server:
        sender = Sender(server)
        sender.send(b"a" * 2000)
        sender.send(b"b" * 1024)  # exactly the buffer: not truncated
        sender.sync()
        sender.close()
    lines = norm(server.output())
    want = ["from 127.0.0.1:#: " + "a" * 1024, "truncated: 2000 bytes, kept 1024", "from 127.0.0.1:#: " + "b" * 1024]
    check(lines[1:4] == want, f"{server.name} printed {lines[1:4]}, expected {want}")
    check(lines[-1] == "model=udp received=3 truncated=1", f"{server.name}: last line {lines[-1]!r}")

    with Server(prog(lang, "server") + ["--port", "0", "--bufsize", "16"]) as server:
        client_ok("cpp" if lang == "python" else "python", server.port, b"twenty bytes long..\n", [b"x" * 19])
        sender = Sender(server)
        sender.sync()
        sender.close()
    lines = norm(server.output())
    want = ["from 127.0.0.1:#: twenty bytes lon", "truncated: 19 bytes, kept 16"]
    check(lines[1:3] == want, f"{server.name} --bufsize 16 printed {lines[1:3]}, expected {want}")


def descriptors(lang):
    with Server(prog(lang, "server") + ["--port", "0"]) as server:
        sender = Sender(server)
        sender.sync()
        before = server.fds()
        for batch in range(10):  # in batches: a full receive buffer drops datagrams, markers too
            for i in range(30):
                sender.send(b"z" * ((batch * 30 + i) * 37 % 2000))
            sender.sync()
        check(server.fds() == before, f"{server.name}: descriptors {server.fds()} after 300 datagrams, before {before}")
        sender.close()


def signals(lang):
    for signo in (signal.SIGINT, signal.SIGTERM):
        with Server(prog(lang, "server") + ["--port", "0"]) as server:
            sender = Sender(server)
            sender.send(b"q" * 1500)
            sender.sync()
            sender.close()
            server.stop(signo)
        want = "model=udp received=2 truncated=1"
        check(server.output()[-1:] == [want], f"{server.name} after {signal.Signals(signo).name}: "
              f"last line {server.output()[-1:]}, expected {want}")


def errors():
    servers = [prog(lang, "server") for lang in ("cpp", "python")]
    clients = [prog(lang, "client") for lang in ("cpp", "python")]
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind(("127.0.0.1", 0))
        port = taken.getsockname()[1]
        outs = [run_client(s + ["--port", str(port)], expect=1).stderr for s in servers]
        want = f"error: bind: Address already in use; 127.0.0.1:{port}\n".encode()
        check(outs == [want, want], f"a port in use: {outs}, expected {want!r} from both")
    outs = [run_client(c + ["--host", "no-such-host.invalid"], input=b"hi\n", expect=1).stderr for c in servers + clients]
    check(outs[0].startswith(b"error: getaddrinfo: ") and outs.count(outs[0]) == 4,
          f"a host that does not resolve: {outs}, expected the same 'error: getaddrinfo: ...' from all four")


if __name__ == "__main__":
    command, *rest = sys.argv[3:]
    {"interop": interop, "client-wire": client_wire, "truncation": truncation, "descriptors": descriptors,
     "signals": signals, "errors": errors}[command](*rest)
    sys.exit(netlib.finish())
