#!/usr/bin/env python3
"""Checks of lab 06 (TCP basics): the C++ programs and their Python originals
against each other, byte for byte, and the servers against faulty clients.

    lab06_check.py BIN_DIR PYTHON_DIR COMMAND [ARGS]

    interop PAIR LANG   PAIR (echo|hello) server in LANG (cpp|python) against
                        the C++ client, the Python client and a raw client
    client-wire PAIR    both clients of PAIR against a recording server: the
                        same bytes on the wire, the same lines printed
    ipv6                the echo pair over ::1 and localhost
    faults PAIR LANG    clients that stop mid-request, idle, flood or reset:
                        the server survives, keeps its descriptors, serves on
    errors PAIR         port in use, a host that does not resolve, a closed port
    signals PAIR LANG   SIGINT and SIGTERM (also with a client connected): exit 0
                        and the summary line
    send-vs-sendall LANG
"""
import pathlib
import re
import signal
import socket
import subprocess
import sys
import threading
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
import netlib  # noqa: E402
from netlib import Server, check, connect, fail, recv_until_closed, run_client, settle  # noqa: E402

BIN = pathlib.Path(sys.argv[1])
PY = pathlib.Path(sys.argv[2])

REQUEST = "请求占领地球".encode()
REPLY = "不要回答,不要回答,不要回答".encode()
HELLO = b"Hello, world"
IDLE_S = 2  # the servers' --idle-timeout in the fault checks


def prog(lang, name):
    """The command of program `name` (echo-server, ...) in `lang`."""
    if lang == "cpp":
        return [BIN / f"tcp-{name}"]
    return [sys.executable, PY / f"{name.replace('-', '_')}.py"]


def norm(lines):
    """Lines with the clients' ephemeral ports as #."""
    return [re.sub(r"(127\.0\.0\.1|\[::1\]):\d+", r"\1:#", line) for line in lines]


def client_ok(cmd, port, expected, host="127.0.0.1"):
    """Run a client; require exit 0, exactly `expected` on stdout and nothing on stderr."""
    r = run_client(cmd + ["--host", host, "--port", str(port)])
    check(r.stdout == expected, f"{cmd[-1]} --host {host}: printed {r.stdout!r}, expected {expected!r}")
    check(r.stderr == b"", f"{cmd[-1]}: stderr {r.stderr!r}")


def good_client(pair, server):
    """A well-behaved raw client: the seed's exchange, checked byte for byte."""
    s = connect(server.port, server.host)
    if pair == "echo":
        s.sendall(HELLO)
        s.shutdown(socket.SHUT_WR)
        expected = HELLO
    else:
        s.sendall(REQUEST)
        expected = REPLY
    got = recv_until_closed(s)
    s.close()
    check(got == expected, f"{server.name}: a good client got {got!r}, expected {expected!r}")


# ---------------------------------------------------------------- interop

def interop(pair, lang):
    odd = bytes(range(256)) * 40 + "中文".encode()  # every byte value, more than one recv's worth
    with Server(prog(lang, f"{pair}-server") + ["--port", "0"]) as server:
        for client_lang in ("cpp", "python"):
            client_ok(prog(client_lang, f"{pair}-client"), server.port,
                      b"Received 'Hello, world'\n" if pair == "echo" else REPLY + b"\n")
        s = connect(server.port)
        if pair == "echo":
            s.sendall(odd)
            s.shutdown(socket.SHUT_WR)
            got, expected = recv_until_closed(s), odd
        else:
            s.sendall(REQUEST)
            got, expected = recv_until_closed(s), REPLY
        s.close()
        check(got == expected, f"raw client got {len(got)} bytes {got[:40]!r}..., expected {expected[:40]!r}...")
        if pair == "hello":  # back in accept(): a Python server may stop between any two lines
            check(settle(lambda: server.output().count("server waiting...") == 4), f"{server.output()}")
        server.stop()
    if pair == "echo":
        expected = ["listening on 127.0.0.1:#"] + ["Connected by 127.0.0.1:#"] * 3 + \
                   [f"model=iterative served=3 bytes={2 * len(HELLO) + len(odd)}"]
    else:
        expected = ["listening on 127.0.0.1:#"] + ["server waiting...", REQUEST.decode()] * 3 + \
                   ["server waiting...", "model=iterative served=3"]
    check(norm(server.output()) == expected, f"{server.name} printed {server.output()}, expected {expected}")
    check(server.errors() == [], f"{server.name}: stderr {server.errors()}")


class Recorder:
    """A server in this script that records what one client sends and answers
    `reply` (None: echo each chunk until the client closes; else after
    `expect` bytes, then close)."""

    def __init__(self, reply=None, expect=0):
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(netlib.TIMEOUT_S)
        self.port = self.listener.getsockname()[1]
        self.received = b""
        self.thread = threading.Thread(target=self._serve, args=(reply, expect))
        self.thread.start()

    def _serve(self, reply, expect):
        try:
            conn, _ = self.listener.accept()
            with conn:
                conn.settimeout(netlib.TIMEOUT_S)
                while reply is None or len(self.received) < expect:
                    data = conn.recv(65536)
                    if not data:
                        break
                    self.received += data
                    if reply is None:
                        conn.sendall(data)
                if reply is not None:
                    conn.sendall(reply)
        except OSError as e:
            fail(f"recorder: {e}")
        finally:
            self.listener.close()

    def join(self):
        self.thread.join(netlib.TIMEOUT_S)


def client_wire(pair):
    # What repr() must escape, as Python's bytes repr does (the seed's Python 2 line).
    odd = b"it's \"q\" \\ \t\n\r\x00\x7f\xe4\xb8\xad"
    cases = [(None, b"Received 'Hello, world'\n"), (odd, b"Received " + repr(odd)[1:].encode() + b"\n")] \
        if pair == "echo" else [(REPLY, REPLY + b"\n")]
    for reply, expected_out in cases:
        for lang in ("cpp", "python"):
            rec = Recorder(reply, expect=len(HELLO) if pair == "echo" else len(REQUEST))
            cmd = prog(lang, f"{pair}-client")
            r = run_client(cmd + ["--port", str(rec.port)])
            rec.join()
            sent = HELLO if pair == "echo" else REQUEST
            check(rec.received == sent, f"{lang} {pair}-client sent {rec.received!r}, expected {sent!r}")
            check(r.stdout == expected_out, f"{lang} {pair}-client printed {r.stdout!r}, expected {expected_out!r}")


def ipv6():
    """::1, and localhost (whichever address the resolver gives first, the client finds it)."""
    for host in ("::1", "localhost"):
        for server_lang, client_lang in (("cpp", "cpp"), ("cpp", "python"), ("python", "cpp")):
            with Server(prog(server_lang, "echo-server") + ["--host", host, "--port", "0"]) as server:
                check(host != "::1" or server.host == "::1", f"{server.name} --host ::1: {server.output()[0]!r}")
                client_ok(prog(client_lang, "echo-client"), server.port, b"Received 'Hello, world'\n", host=host)
                server.stop()
            loopback = f"[{server.host}]" if ":" in server.host else server.host
            want = f"Connected by {loopback}:#"
            check(norm(server.output())[1] == want, f"{server.name} --host {host}: {server.output()}, expected {want}")


# ---------------------------------------------------------------- faults

def flood_echo(server, size=8 << 20):
    """A client that sends `size` bytes as fast as it can and reads the echo meanwhile."""
    payload = bytes((i * 7) & 0xFF for i in range(1 << 16)) * (size >> 16)
    s = connect(server.port)
    got = []
    reader = threading.Thread(target=lambda: got.append(recv_until_closed(s, limit=2 * size)))
    reader.start()
    s.sendall(payload)
    s.shutdown(socket.SHUT_WR)
    reader.join(netlib.TIMEOUT_S)
    s.close()
    check(got and got[0] == payload, f"{server.name}: a flood of {size} bytes came back as "
          f"{len(got[0]) if got else 'nothing'} bytes, not the same")


def flood_blind(server, size=64 << 20):
    """A client that sends without reading anything, then closes."""
    s = connect(server.port)
    s.settimeout(IDLE_S + 5)
    chunk = b"f" * (1 << 20)
    try:
        for _ in range(size >> 20):
            s.sendall(chunk)
    except OSError:
        pass  # the server closed or reset us: what it should do, sooner or later
    s.close()


def idler(server):
    """A client that connects, sends nothing, and waits for the server to close it."""
    s = connect(server.port)
    start = time.monotonic()
    try:
        got = s.recv(1)
    except OSError as e:
        got = e
    waited = time.monotonic() - start
    s.close()
    check(got == b"", f"{server.name}: an idle client got {got!r}, expected the server to close it")
    check(IDLE_S * 0.8 <= waited <= IDLE_S + 10, f"{server.name}: idle client closed after {waited:.1f} s, "
          f"expected about {IDLE_S} s")
    line = f"closed: idle for {IDLE_S} s"
    check(settle(lambda: any(line in e for e in server.errors()), timeout=5),
          f"{server.name}: no '{line}' on stderr: {server.errors()}")


def faults(pair, lang):
    half = HELLO[:5] if pair == "echo" else REQUEST[:7]  # cut in the middle of a character too

    def stop_midway(server):
        s = connect(server.port)
        s.sendall(half)
        s.close()

    def reset(server):
        s = connect(server.port)
        s.sendall(half)
        netlib.reset(s)

    def connect_and_reset(server):
        netlib.reset(connect(server.port))

    clients = [stop_midway, idler, reset, connect_and_reset, flood_blind] + ([flood_echo] if pair == "echo" else [])
    with Server(prog(lang, f"{pair}-server") + ["--port", "0", "--idle-timeout", str(IDLE_S)]) as server:
        good_client(pair, server)
        before = server.fds()
        for bad in clients:
            bad(server)
            check(settle(lambda: server.fds() == before),
                  f"{server.name} after {bad.__name__}: descriptors {server.fds()}, before {before}")
            check(server.alive(), f"{server.name} died after {bad.__name__}: {server.errors()}")
            if not server.alive():
                return
            good_client(pair, server)
            print(f"ok: {bad.__name__}", flush=True)
        server.stop()
    check(re.match(rf"model=iterative served={len(clients) * 2 + 1}( |$)", server.output()[-1]),
          f"{server.name}: last line {server.output()[-1]!r}")


# ---------------------------------------------------------------- errors

def same_error(cmds, expected, prefix=False):
    """Each command exits 1 with the same one line on stderr (== expected, or starting with it)."""
    lines = []
    for cmd in cmds:
        r = run_client(cmd, expect=1)
        err = r.stderr.decode(errors="replace")
        lines.append(err)
        good = err.startswith(expected) if prefix else err == expected
        check(good and err.count("\n") == 1, f"{' '.join(map(str, cmd[-4:]))}: stderr {err!r}, expected {expected!r}")
        check(r.stdout == b"", f"{cmd}: stdout {r.stdout!r}")
    check(len(set(lines)) == 1, f"C++ and Python say different things: {lines}")


def errors(pair):
    servers = [prog(lang, f"{pair}-server") for lang in ("cpp", "python")]
    clients = [prog(lang, f"{pair}-client") for lang in ("cpp", "python")]
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        same_error([s + ["--port", str(port)] for s in servers],
                   f"error: bind: Address already in use; 127.0.0.1:{port}\n")
    # The closed port: a port just released (nothing listens on it now).
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    same_error([c + ["--port", str(closed)] for c in clients], f"error: connect: Connection refused; 127.0.0.1:{closed}\n")
    same_error([c + ["--host", "no-such-host.invalid"] for c in servers + clients], "error: getaddrinfo: ", prefix=True)


# ---------------------------------------------------------------- signals

def signals(pair, lang):
    summary = "model=iterative served={}" + (" bytes=0" if pair == "echo" else "")
    for signo in (signal.SIGINT, signal.SIGTERM):
        for with_client in (False, True):
            with Server(prog(lang, f"{pair}-server") + ["--port", "0"]) as server:
                s = None
                if with_client:  # blocked in recv on a silent client when the signal comes
                    before = len(server.fds())
                    s = connect(server.port)
                    # accepted, and asleep again (in recv): the count is done
                    check(settle(lambda: len(server.fds()) == before + 1 and server.sleeping()),
                          f"{server.name}: did not accept")
                server.stop(signo)
                if s:
                    s.close()
            what = f"{server.name} after {signal.Signals(signo).name}{' with a client' if with_client else ''}"
            want = summary.format(1 if with_client else 0)
            check(server.output()[-1:] == [want], f"{what}: last line {server.output()[-1:]}, expected {want}")


# ---------------------------------------------------------------- send vs sendall

def send_vs_sendall(lang):
    cmd = [BIN / "tcp-send-vs-sendall"] if lang == "cpp" else [sys.executable, PY / "send_vs_sendall.py"]
    total = 64 << 20
    r = run_client(cmd + ["--bytes", str(total)], timeout=60)
    out = r.stdout.decode()
    m = re.search(r"^send: the kernel took (\d+) of (\d+) bytes; the reader got (\d+)$", out, re.M)
    if check(m, f"no send line in {out!r}"):
        took, of, got = map(int, m.groups())
        check(0 < took < total and of == total and got == took,
              f"one send() of {total} bytes took {took}, the reader got {got}: expected a part, all of it read")
    m = re.search(r"^send loop: (\d+) calls took (\d+) of (\d+) bytes; the reader got (\d+)$", out, re.M)
    if check(m, f"no send loop line in {out!r}"):
        calls, took, of, got = map(int, m.groups())
        check(calls > 1 and took == got == total, f"send loop: {calls} calls, {took} taken, {got} read of {total}")
    m = re.search(r"^send_all: took (\d+) of (\d+) bytes; the reader got (\d+)$", out, re.M)
    if check(m, f"no send_all line in {out!r}"):
        took, of, got = map(int, m.groups())
        check(took == got == total, f"send_all: {took} taken, {got} read of {total}")
    check(re.search(rf"^model=send-vs-sendall bytes={total} send=\d+ send_calls=\d+ send_all={total} elapsed_s=\S+$",
                    out, re.M), f"summary line missing in {out!r}")


if __name__ == "__main__":
    command, *rest = sys.argv[3:]
    {"interop": interop, "client-wire": client_wire, "ipv6": ipv6, "faults": faults, "errors": errors,
     "signals": signals, "send-vs-sendall": send_vs_sendall}[command](*rest)
    sys.exit(netlib.finish())
