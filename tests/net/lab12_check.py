#!/usr/bin/env python3
"""Lab 12's checks (tests/net/lab12.cmake): the socketserver programs.

    lab12_check.py --bin-dir DIR interop SERVER LANG   both clients (C++, Python) against SERVER written in LANG:
                                                       the same client and server output, byte for byte
    lab12_check.py --bin-dir DIR bytes SERVER LANG     the exact bytes on the wire, with a raw client
    lab12_check.py --bin-dir DIR waits LANG            TCPServer: a silent client holds up the next one
    lab12_check.py --bin-dir DIR faults SERVER LANG    a silent client (threading: does not block the others),
                                                       a hang-up before the request, a reset (a handler exception
                                                       on stderr naming the client, the server goes on), more
                                                       than the handler reads: no descriptor leak
    lab12_check.py --bin-dir DIR signals SERVER LANG   SIGINT and SIGTERM (with a client connected): exit 0, summary
    lab12_check.py --bin-dir DIR thread-name LANG      the seed's three clients, each served by another thread
    lab12_check.py --bin-dir DIR forking LANG          a child per request (pids), no child or zombie left after
    lab12_check.py --bin-dir DIR unix LANG             the socket file exists while serving; C++ removes it on
                                                       close, CPython leaves it (the defect the README names)
    lab12_check.py --bin-dir DIR latency LANG          shutdown(): C++ median under 10 ms; Python runs (0.5 s polls)
    lab12_check.py --bin-dir DIR client LANG           a refused connection, a UDP answer that never comes: exit 1

SERVER: tcp, threading-tcp, forking-tcp, udp, unix; LANG: cpp, python.
"""
import argparse
import os
import pathlib
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

TESTS = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(TESTS))
import netlib  # noqa: E402
from netlib import check, fail  # noqa: E402

LAB = TESTS.parent / "labs" / "12-socketserver"
WAIT_S = 5  # for an answer or a close on loopback

CLIENT_INPUT = "hello\n  Mixed Case, 中文 x  \n\nlast\n".encode()
CLIENT_OUTPUT = "Received: HELLO\nReceived: MIXED CASE, 中文 X\nReceived: LAST\nmodel=client sent=3 received=3\n".encode()
SERVED_LINES = ["{who} wrote:", "hello", "{who} wrote:", "Mixed Case, 中文 x", "{who} wrote:", "last"]
MODEL = {"tcp": "tcp", "threading-tcp": "threading-tcp", "forking-tcp": "forking-tcp", "udp": "udp", "unix": "unix"}


def program(bin_dir, lang, name):
    """The command of program `name` (ss-tcp's name without ss-) in C++ or Python."""
    if lang == "cpp":
        return [bin_dir / f"ss-{name}"]
    return [sys.executable, LAB / "python" / f"ss_{name.replace('-', '_')}.py"]


class UnixServer(netlib.Server):
    """netlib.Server for a server whose first line is `listening on PATH`."""

    def __init__(self, cmd, path):
        self.cmd = [str(c) for c in cmd]
        self.name = os.path.basename(self.cmd[0]) if not self.cmd[0].endswith("python3") else self.cmd[1]
        self.proc = subprocess.Popen(self.cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, env=netlib.lab_env())
        self.lines, self.err_lines = [], []
        self._cond = threading.Condition()
        self._readers = [threading.Thread(target=self._read, args=(self.proc.stdout, self.lines), daemon=True),
                         threading.Thread(target=self._read, args=(self.proc.stderr, self.err_lines), daemon=True)]
        for r in self._readers:
            r.start()
        self.status = None
        first = self.wait_line(lambda line: True, what="its first line")
        if first != f"listening on {path}":
            self.kill()
            raise RuntimeError(f"{self.name}: first line {first!r}, expected 'listening on {path}'; "
                               f"stderr: {self.errors()}")
        self.path = path


class Target:
    """A running server of the lab and how to reach it (TCP, UDP or a Unix socket)."""

    def __init__(self, bin_dir, server, lang, tmp):
        self.kind = server
        cmd = program(bin_dir, lang, server)
        if server == "unix":
            self.path = os.path.join(tmp, "ss.sock")
            self.server = UnixServer(cmd + ["--path", self.path], self.path)
            self.client_args = ["--unix", self.path]
            self.who = "(unnamed)"
        else:
            self.server = netlib.Server(cmd + ["--host", "127.0.0.1", "--port", "0"])
            self.client_args = ["--port", str(self.server.port)] + (["--udp"] if server == "udp" else [])
            self.who = "127.0.0.1"

    def connect(self):
        if self.kind == "unix":
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.settimeout(WAIT_S)
            s.connect(self.path)
            return s
        return netlib.connect(self.server.port, timeout=WAIT_S)

    def ask(self, data):
        """One request with a raw socket; the answer (None if none came in time)."""
        if self.kind == "udp":
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                s.settimeout(WAIT_S)
                s.sendto(data, ("127.0.0.1", self.server.port))
                try:
                    return s.recvfrom(65536)[0]
                except TimeoutError:
                    return None
        with self.connect() as s:
            s.sendall(data)
            try:
                return netlib.recv_until_closed(s)
            except TimeoutError:
                return None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return self.server.__exit__(*exc)


def without_pids(lines):
    return [re.sub(r"^child \d+ serves ", "child # serves ", line) for line in lines]


def expected_server_lines(target, requests):
    lines = []
    for _ in range(requests):
        if target.kind == "forking-tcp":
            lines.append(f"child # serves {target.who}")
        lines += [line.format(who=target.who) for line in SERVED_LINES[:2]]
    return lines


# --- interop and bytes --------------------------------------------------------------------------


def test_interop(bin_dir, server, lang):
    with tempfile.TemporaryDirectory() as tmp, Target(bin_dir, server, lang, tmp) as t:
        for client in ("cpp", "python"):
            result = netlib.run_client(program(bin_dir, client, "client") + t.client_args, input=CLIENT_INPUT)
            check(result.stdout == CLIENT_OUTPUT, f"{client} client against {lang} {server}: stdout\n"
                  f"{result.stdout.decode(errors='replace')}expected\n{CLIENT_OUTPUT.decode()}")
            check(result.stderr == b"", f"{client} client: stderr {result.stderr!r}")
        t.server.stop()
        lines = without_pids(t.server.output()[1:])
        per_request = [line.format(who=t.who) for line in SERVED_LINES]
        if server == "forking-tcp":
            per_request = sum(([f"child # serves {t.who}"] + per_request[i:i + 2] for i in (0, 2, 4)), [])
        expected = per_request * 2 + [f"model={MODEL[server]} served=6"]
        check(lines == expected, f"{lang} {server}: output\n" + "\n".join(lines) + "\nexpected\n" + "\n".join(expected))
        check(t.server.errors() == [], f"{lang} {server}: stderr {t.server.errors()}")


def test_bytes(bin_dir, server, lang):
    with tempfile.TemporaryDirectory() as tmp, Target(bin_dir, server, lang, tmp) as t:
        # strip() takes ASCII blanks, upper() ASCII letters: UTF-8 and other bytes pass unchanged
        for data, answer in [(b" \t hello World \xe4\xb8\xad\xc3\xa9 z\r\n", b"HELLO WORLD \xe4\xb8\xad\xc3\xa9 Z"),
                             (b"\xff\x00abc\x00", b"\xff\x00ABC\x00"), (b"x" * 1024, b"X" * 1024)]:
            got = t.ask(data)
            check(got == answer, f"{lang} {server}: the answer to {data[:40]!r}: {got!r}, expected {answer!r}")


# --- one at a time, faults, signals -------------------------------------------------------------


def test_waits(bin_dir, lang):
    with tempfile.TemporaryDirectory() as tmp, Target(bin_dir, "tcp", lang, tmp) as t:
        silent = t.connect()  # first in the listen queue: the server takes it first
        other = t.connect()
        other.sendall(b"second")
        other.settimeout(0.5)
        try:
            early = other.recv(1024)
        except TimeoutError:
            early = None
        check(early is None, f"{lang} TCPServer answered {early!r} while a silent client holds it")
        silent.close()  # its request is b"": the server answers nothing and goes on
        other.settimeout(WAIT_S)
        check(other.recv(1024) == b"SECOND", f"{lang} TCPServer: the second client not served after the first left")
        other.close()


def test_faults(bin_dir, server, lang):
    with tempfile.TemporaryDirectory() as tmp, Target(bin_dir, server, lang, tmp) as t:
        before = t.server.fds()
        leaked = []

        def still_serving(what):
            check(t.ask(b"after") == b"AFTER", f"{lang} {server}: not serving after {what}")
            netlib.settle(lambda: t.server.fds() == before, timeout=0 if leaked else WAIT_S)
            after = t.server.fds()
            if not check(after == before, f"{lang} {server}: descriptors after {what}: {after}, before: {before}"):
                leaked.append(what)

        if server == "threading-tcp":  # a silent client does not hold up the others
            silent = t.connect()
            check(t.ask(b"while one is silent") == b"WHILE ONE IS SILENT",
                  f"{lang} {server}: a client not served while another is silent")
            silent.close()
            still_serving("a silent client")

        s = t.connect()
        s.close()  # hangs up before sending anything: the request is b""
        still_serving("a hang-up before the request")

        s = t.connect()
        port = s.getsockname()[1] if server != "unix" else None
        netlib.reset(s)  # the handler's recv() fails: an exception in the handler
        if port is not None:
            seen = netlib.settle(lambda: any(str(port) in line for line in t.server.errors()), timeout=WAIT_S)
            check(seen, f"{lang} {server}: no error naming the client's port {port} on stderr: {t.server.errors()}")
        still_serving("a reset")

        with t.connect() as s:  # more than the handler reads: the close with unread bytes may reset us
            s.sendall(b"a" * 4096)
            try:
                s.recv(1024)
            except OSError:
                pass
        still_serving("a request longer than 1024 bytes")
        check(t.server.alive(), f"{lang} {server}: died during the faults: {t.server.errors()}")


def test_faults_udp(bin_dir, lang):
    with tempfile.TemporaryDirectory() as tmp, Target(bin_dir, "udp", lang, tmp) as t:
        before = t.server.fds()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.sendto(b"gone", ("127.0.0.1", t.server.port))  # the sender closes before the answer
        check(t.ask(b"x" * 1024) == b"X" * 1024, f"{lang} udp: a 1024-byte datagram")
        check(t.ask(b"after") == b"AFTER", f"{lang} udp: not serving after a sender that left")
        check(t.server.fds() == before, f"{lang} udp: descriptors {t.server.fds()}, before: {before}")


def test_signals(bin_dir, server, lang):
    for signo in (signal.SIGINT, signal.SIGTERM):
        with tempfile.TemporaryDirectory() as tmp, Target(bin_dir, server, lang, tmp) as t:
            threads = t.server.threads()
            check(t.ask(b"one") == b"ONE", f"{lang} {server}: no answer")
            # A client connected, silent, when the signal comes: its handler thread ends too. Forking:
            # the signal reaches the parent only; conclab sends it on to the child, CPython's
            # server_close() would wait for that child for ever (so not for Python).
            lingering = None
            if server == "threading-tcp":
                netlib.settle(lambda: t.server.threads() == threads)  # the first request's thread has ended
                lingering = t.connect()
                check(netlib.settle(lambda: t.server.threads() > threads), f"{lang}: no thread for a client")
            elif server == "forking-tcp" and lang == "cpp":
                pid = t.server.proc.pid
                netlib.settle(lambda: children(pid) == {})  # the first request's child has ended
                lingering = t.connect()
                check(netlib.settle(lambda: len(children(pid)) == 1), f"{lang}: no child for a client")
            t.server.stop(signo)
            last = t.server.output()[-1] if t.server.output() else ""
            served = "[12]" if lingering else "1"  # the second is counted when its thread runs the handler
            check(re.fullmatch(f"model={MODEL[server]} served={served}", last),
                  f"{lang} {server}: last line after {signo.name}: {last!r}")
            if lingering:
                lingering.close()


# --- the seed's thread names, forking, unix, shutdown latency -------------------------------------


def test_thread_name(bin_dir, lang):
    result = netlib.run_client(program(bin_dir, lang, "thread-name"))
    lines = result.stdout.decode().splitlines()
    check(len(lines) == 6, f"{lang}: {len(lines)} lines: {lines}")
    if len(lines) != 6:
        return
    check(netlib.LISTENING.match(lines[0]) is not None, f"{lang}: first line {lines[0]!r}")
    loop = re.fullmatch(r"Server loop running in thread: (.+)", lines[1])
    check(loop is not None, f"{lang}: second line {lines[1]!r}")
    names = []
    for i, line in enumerate(lines[2:5], start=1):
        m = re.fullmatch(rf"Received: (.+): Hello World {i}", line)
        if check(m is not None, f"{lang}: line {line!r}, expected 'Received: <thread>: Hello World {i}'"):
            names.append(m.group(1))
    name_format = r"Thread-\d+" if lang == "cpp" else r"Thread-\d+ \(process_request_thread\)"
    check(all(re.fullmatch(name_format, n) for n in names), f"{lang}: thread names {names}, expected {name_format}")
    check(len(set(names)) == 3 and (loop is None or loop.group(1) not in names),
          f"{lang}: the three requests were not served by three threads of their own: {names}")
    check(lines[5] == "model=thread-name clients=3 served=3", f"{lang}: summary {lines[5]!r}")


def children(pid):
    """The server's children: {pid: state}, from /proc."""
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = open(f"/proc/{entry}/stat").read()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        if int(fields[1]) == pid:
            found[int(entry)] = fields[0]
    return found


def test_forking(bin_dir, lang):
    with tempfile.TemporaryDirectory() as tmp, Target(bin_dir, "forking-tcp", lang, tmp) as t:
        pid = t.server.proc.pid
        for i in range(5):
            check(t.ask(f"request {i}".encode()) == f"REQUEST {i}".encode(), f"{lang}: request {i} not answered")
        t.server.wait_line(lambda line: line == "request 4", what="the fifth request")
        pids = [int(m.group(1)) for m in map(re.compile(r"child (\d+) serves ").match, t.server.output()) if m]
        check(len(set(pids)) == 5 and pid not in pids, f"{lang}: child pids {pids} (server {pid})")
        # every child has ended (its client got the answer and the close): none may stay, zombie or not
        gone = netlib.settle(lambda: children(pid) == {}, timeout=WAIT_S)
        check(gone, f"{lang}: children of the server left after the clients finished: {children(pid)}")
        t.server.stop()
        check(t.server.output()[-1:] == ["model=forking-tcp served=5"], f"{lang}: summary {t.server.output()[-1:]}")


def test_unix(bin_dir, lang):
    with tempfile.TemporaryDirectory() as tmp:
        with Target(bin_dir, "unix", lang, tmp) as t:
            check(os.path.exists(t.path), f"{lang}: no socket file {t.path} while serving")
            check(t.ask(b"hi") == b"HI", f"{lang}: no answer on {t.path}")
            t.server.stop()
        if lang == "cpp":
            check(not os.path.exists(t.path), f"cpp: the socket file {t.path} is left after server_close()")
            with Target(bin_dir, "unix", lang, tmp) as again:  # the same path serves again
                check(again.ask(b"again") == b"AGAIN", "cpp: no answer from a second server on the same path")
            check(not os.path.exists(t.path), "cpp: the socket file is left by the second server")
        else:  # CPython's server_close() leaves it (the README says so); ss_unix.py removes it before bind()
            check(os.path.exists(t.path), "python: the socket file is gone: does CPython remove it now?")
            with Target(bin_dir, "unix", lang, tmp) as again:
                check(again.ask(b"again") == b"AGAIN", "python: no answer from a second server on the same path")


def test_latency(bin_dir, lang):
    rounds = 9 if lang == "cpp" else 3
    result = netlib.run_client(program(bin_dir, lang, "shutdown-latency") + ["--rounds", str(rounds)], timeout=60)
    lines = result.stdout.decode().splitlines()
    check([re.sub(r"\d+\.\d{6}", "#", line) for line in lines] ==
          [f"round {i}: shutdown took # s" for i in range(1, rounds + 1)] +
          [f"model=tcp rounds={rounds} shutdown_s=# median_s=# max_s=#"], f"{lang}: output {lines}")
    m = re.search(r"median_s=(\S+)", lines[-1] if lines else "")
    median = float(m.group(1)) if m else None
    print(f"{lang}: {lines[-1] if lines else ''}")
    if lang == "cpp":
        check(median is not None and median < 0.010, f"cpp: median shutdown {median} s, expected under 10 ms")


def test_client(bin_dir, lang):
    client = program(bin_dir, lang, "client")
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        result = netlib.run_client(client + ["--port", str(port)], input=b"x\n", expect=1)
        check(b"Connection refused" in result.stderr and result.stderr.count(b"\n") == 1,
              f"{lang} client, refused: stderr {result.stderr!r}")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:  # bound, never answers
        s.bind(("127.0.0.1", 0))
        started = time.monotonic()
        result = netlib.run_client(client + ["--udp", "--port", str(s.getsockname()[1]), "--timeout", "0.3"],
                                   input=b"x\n", expect=1)
        check(result.stderr == b"error: recvfrom: timed out\n", f"{lang} client, no UDP answer: stderr {result.stderr!r}")
        check(time.monotonic() - started < WAIT_S, f"{lang} client did not give up after --timeout 0.3")
    result = netlib.run_client(client, input=b"")
    check(result.stdout == b"model=client sent=0 received=0\n", f"{lang} client, empty stdin: {result.stdout!r}")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--bin-dir", type=pathlib.Path, required=True)
    parser.add_argument("test")
    parser.add_argument("args", nargs="+")
    args = parser.parse_args()
    tests = {"interop": test_interop, "bytes": test_bytes, "waits": test_waits, "signals": test_signals,
             "thread-name": test_thread_name, "forking": test_forking, "unix": test_unix,
             "latency": test_latency, "client": test_client,
             "faults": lambda b, server, lang: (test_faults_udp(b, lang) if server == "udp"
                                                else test_faults(b, server, lang))}
    tests[args.test](args.bin_dir, *args.args)
    return netlib.finish()


if __name__ == "__main__":
    sys.exit(main())
