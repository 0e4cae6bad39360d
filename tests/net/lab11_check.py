#!/usr/bin/env python3
"""Checks of lab 11 (I/O multiplexing): the C++ programs and their Python
originals, against each other, against many clients at once and faulty ones.

    lab11_check.py BIN_DIR --sanitizer=NAME COMMAND [ARGS]

    echo SERVER          several clients at once while one stays idle; 1 MiB in one send comes back whole
                         (proves the edge-triggered server drains); lab 06's C++ and Python echo clients
    no-drain LANG        the edge-triggered server with --no-drain echoes 1024 of 2000 bytes, the rest only
                         when more comes; without it, all 2000
    faults SERVER        stop mid-message, reset, connect and reset, flood without reading, flood: the server
                         survives, serves on, and its descriptors come back to what they were
    fd-setsize SERVER    1030 clients at once on a select server: past FD_SETSIZE they are dropped (said once),
                         the others served, the server lives on
    signals SERVER       SIGINT and SIGTERM, with and without a client: exit 0 and the summary line
    stdin LANG           select on a pipe: lines echoed as they come (two at once: both), a line per timeout,
                         the end of input ends it with the summary line
    two-listeners LANG   both ports served at once, a thread per connection (an idle client on one port does
                         not hold the other), threads joined, descriptors back; SIGTERM with a client connected
    http-curl|http-protocol|http-faults LANG    lab 08's checks (tests/net/lab08_check.py) on the epoll server
    http-same-bytes      mux-http-hello, its Python original and lab 08's server answer the same bytes
    http-many            200 connections at once, half of them idle mid-request: the others are answered

SERVER is cpp-select, cpp-poll, cpp-epoll, cpp-epoll-edge, python-select, python-poll, python-epoll or
python-epoll-edge; LANG is cpp or python.
"""
import pathlib
import re
import signal
import socket
import subprocess
import sys
import threading
import time

TESTS = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(TESTS))
sys.path.insert(0, str(TESTS / "net"))
import netlib  # noqa: E402
from netlib import Server, check, connect, recv_until_closed, run_client, settle  # noqa: E402

BIN = pathlib.Path(sys.argv[1])
SANITIZER = sys.argv[2].removeprefix("--sanitizer=")  # thread, address or empty
LAB = TESTS.parent / "labs" / "11-io-multiplexing"
PY = LAB / "python"
LAB06 = TESTS.parent / "labs" / "06-tcp-basics" / "python"
ECHO_CLIENTS = [[BIN / "tcp-echo-client"], [sys.executable, LAB06 / "echo_client.py"]]
MIB = bytes((i * 7 + (i >> 8)) & 0xFF for i in range(1 << 20))


def echo_cmd(server):
    lang, backend = server.split("-", 1)
    if lang == "cpp":
        return [BIN / f"mux-{backend}-echo"]
    if backend == "select":
        return [sys.executable, PY / "select_echo.py"]
    return [sys.executable, PY / "selectors_echo.py", "--selector", backend]


def prog(lang, name, py):
    return [BIN / name] if lang == "cpp" else [sys.executable, PY / py]


def norm(lines):
    return [re.sub(r"(127\.0\.0\.1|\[::1\]):\d+", r"\1:#", line) for line in lines]


def exchange(port, payload, what):
    """Send `payload` in one sendall while reading the echo; close our side; the echo must be the same bytes."""
    s = connect(port)
    got = []
    reader = threading.Thread(target=lambda: got.append(recv_until_closed(s, limit=2 * len(payload) + 1)))
    reader.start()
    s.sendall(payload)
    s.shutdown(socket.SHUT_WR)
    reader.join(netlib.TIMEOUT_S)
    s.close()
    ok = check(got and got[0] == payload, f"{what}: {len(payload)} bytes came back as "
               f"{len(got[0]) if got else 'nothing'} bytes, not the same")
    return ok


def conversation(port, rounds, results, i):
    """A client that sends a line, waits for its echo, `rounds` times, on one connection."""
    try:
        with connect(port) as s:
            for r in range(rounds):
                line = f"client {i} round {r} 中文\n".encode()
                s.sendall(line)
                got = b""
                while len(got) < len(line):
                    data = s.recv(4096)
                    if not data:
                        break
                    got += data
                if got != line:
                    results[i] = f"round {r}: {got!r}, expected {line!r}"
                    return
        results[i] = True
    except OSError as e:
        results[i] = f"{e}"


# ---------------------------------------------------------------- echo

def echo(server_name):
    with Server(echo_cmd(server_name) + ["--port", "0"]) as server:
        port = server.port
        idle = connect(port)  # connects, sends half a line, then nothing: it must hold nobody up
        idle.sendall(b"half a li")
        results = {}
        clients = [threading.Thread(target=conversation, args=(port, 20, results, i)) for i in range(4)]
        for c in clients:
            c.start()
        for c in clients:
            c.join(netlib.TIMEOUT_S)
        for i in range(4):
            check(results.get(i) is True, f"{server.name}: concurrent client {i} (one idle client connected): "
                  f"{results.get(i)}")
        exchange(port, MIB, f"{server.name}: 1 MiB in one send")
        for cmd in ECHO_CLIENTS:  # lab 06's clients, C++ and Python, byte for byte
            r = run_client(cmd + ["--port", str(port)])
            check(r.stdout == b"Received 'Hello, world'\n", f"{cmd[-1]}: printed {r.stdout!r}")
        idle.sendall(b"ne\n")  # the idle client is served too
        got = b""
        while len(got) < len(b"half a line\n"):
            data = idle.recv(100)
            if not data:
                break
            got += data
        check(got == b"half a line\n", f"{server.name}: the idle client got {got!r} back")
        idle.close()
        served = 1 + 4 + 1 + len(ECHO_CLIENTS)
        server.stop()
    nbytes = len(b"half a line\n") + sum(len(f"client {i} round {r} 中文\n".encode()) for i in range(4)
                                           for r in range(20)) + len(MIB) + 12 * len(ECHO_CLIENTS)
    out = norm(server.output())
    model = server_name.split("-", 1)[1]
    check(out[-1] == f"model={model} served={served} bytes={nbytes}", f"{server.name}: last line {out[-1]!r}, "
          f"expected model={model} served={served} bytes={nbytes}")
    check(out.count("accept 127.0.0.1:#") == served, f"{server.name}: accept lines: {out}")
    check(server.errors() == [], f"{server.name}: stderr {server.errors()}")


def no_drain(lang):
    cmd = [BIN / "mux-epoll-edge-echo"] if lang == "cpp" else \
        [sys.executable, PY / "selectors_echo.py", "--selector", "epoll-edge"]
    for flags, expected in ((["--no-drain"], 1024), ([], 2000)):
        with Server(cmd + ["--port", "0"] + flags) as server:
            s = connect(server.port)
            s.sendall(b"x" * 2000)
            s.settimeout(0.5)
            got = b""
            try:
                while len(got) < 2000:
                    data = s.recv(65536)
                    if not data:
                        break
                    got += data
            except TimeoutError:
                pass
            check(len(got) == expected, f"{server.name} {' '.join(flags)}: 2000 bytes sent, {len(got)} echoed "
                  f"within 0.5 s, expected {expected}")
            if flags:  # the rest comes with the next edge: more data
                s.settimeout(netlib.TIMEOUT_S)
                s.sendall(b"y" * 10)
                more = b""
                while len(more) < 986:
                    more += s.recv(65536)
                check(more == b"x" * 976 + b"y" * 10, f"{server.name} --no-drain: after 10 more bytes: {more[:20]!r}"
                      f"... ({len(more)} bytes), expected the 976 left and the 10")
            s.close()


# ---------------------------------------------------------------- faults

def faults(server_name):
    def stop_midway(port):
        s = connect(port)
        s.sendall("请求占领地球".encode()[:7])  # in the middle of a character
        s.close()

    def reset_midway(port):
        s = connect(port)
        s.sendall(b"x" * 5000)
        netlib.reset(s)

    def connect_and_reset(port):
        netlib.reset(connect(port))

    def flood_blind(port, size=32 << 20):
        """Sends without reading: the server stops reading it (its queue is full); then a reset."""
        s = connect(port)
        s.settimeout(1)
        chunk = b"f" * (1 << 20)
        try:
            for _ in range(size >> 20):
                s.sendall(chunk)
        except OSError:
            pass  # the server stopped reading: our send waits, times out
        netlib.reset(s)

    def flood(port):
        exchange(port, MIB * 8, "a flood of 8 MiB")

    with Server(echo_cmd(server_name) + ["--port", "0"]) as server:
        exchange(server.port, b"hello\n", "a good client")
        before = server.fds()
        for bad in (stop_midway, reset_midway, connect_and_reset, flood_blind, flood):
            bad(server.port)
            check(settle(lambda: server.fds() == before), f"{server.name} after {bad.__name__}: descriptors "
                  f"{server.fds()}, before {before}")
            if not check(server.alive(), f"{server.name} died after {bad.__name__}: {server.errors()}"):
                return
            exchange(server.port, b"hello again\n", f"{server.name}: a good client after {bad.__name__}")
            print(f"ok: {bad.__name__}", flush=True)
        server.stop()
    check(re.match(r"model=\S+ served=11 ", server.output()[-1]), f"{server.name}: last line {server.output()[-1]!r}")
    check(all(re.fullmatch(r"connection from 127\.0\.0\.1:\d+ ended: Connection reset by peer", e)
              for e in server.errors()), f"{server.name}: stderr {server.errors()}")


def signals(server_name):
    model = server_name.split("-", 1)[1]
    for signo in (signal.SIGINT, signal.SIGTERM):
        for with_client in (False, True):
            with Server(echo_cmd(server_name) + ["--port", "0"]) as server:
                s = None
                if with_client:
                    s = connect(server.port)
                    check(server.wait_line(lambda line: line.startswith("accept ")), "no accept line")
                server.stop(signo)
                if s:
                    s.close()
            want = f"model={model} served={1 if with_client else 0} bytes=0"
            check(server.output()[-1:] == [want], f"{server.name} after {signal.Signals(signo).name}: last line "
                  f"{server.output()[-1:]}, expected {want}")


def fd_setsize(server_name):
    """1030 clients at once on the select server: those past FD_SETSIZE are dropped, said once, the server lives."""
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard < 2200:
        print(f"skipped: descriptor limit {hard}, 2200 needed")
        return
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, 2200), hard))  # ours, and the server's (inherited)
    with Server(echo_cmd(server_name) + ["--port", "0"]) as server:
        before = server.fds()
        early = connect(server.port)
        many = [connect(server.port) for _ in range(1030)]
        check(settle(lambda: sum(line.startswith("accept ") for line in server.output()) == 1031),
              f"{server.name}: not all 1031 clients accepted")
        early.sendall(b"while 1030 more are connected\n")
        got = early.recv(100)
        check(got == b"while 1030 more are connected\n", f"{server.name}: a client beside 1030 others got {got!r}")
        early.close()
        for s in many:
            s.close()
        check(settle(lambda: server.fds() == before), f"{server.name}: {len(server.fds())} descriptors after the "
              f"1030 clients left, {len(before)} before")
        exchange(server.port, b"after\n", f"{server.name}: a client after the 1030")
        check(server.alive(), f"{server.name} died: {server.errors()}")
        server.stop()
    want = "select: descriptor 1024 is not below FD_SETSIZE (1024); select() cannot watch it, use poll or epoll; " \
           "dropping such connections"
    check(server.errors() == [want], f"{server.name}: stderr {server.errors()}, expected [{want!r}]")


# ---------------------------------------------------------------- select on stdin

def stdin(lang):
    cmd = prog(lang, "mux-select-stdin", "select_stdin.py") + ["--timeout", "0.3"]
    server_like = subprocess.Popen([str(c) for c in cmd], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, env=netlib.lab_env())
    lines = []
    done = threading.Event()

    def read():
        for raw in server_like.stdout:
            lines.append(raw.decode().rstrip("\n"))
        done.set()

    threading.Thread(target=read, daemon=True).start()

    def wait_for(predicate, what):
        ok = settle(lambda: any(predicate(line) for line in lines), timeout=10)
        check(ok, f"{cmd[-3]}: no {what} within 10 s: {lines}")

    wait_for(lambda line: line == "timeout: no input for 0.3 s", "timeout line")
    server_like.stdin.write(b"hello\n")
    server_like.stdin.flush()
    wait_for(lambda line: line == "select get stdin hello", "echo of hello")
    n = len(lines)
    server_like.stdin.write("two lines\n中文 at once\n".encode())  # both at once: both echoed, no timeout between
    server_like.stdin.flush()
    wait_for(lambda line: line == "select get stdin 中文 at once", "echo of the second of two lines")
    check(lines[n:n + 2] == ["select get stdin two lines", "select get stdin 中文 at once"],
          f"two lines written at once: {lines[n:]}")
    server_like.stdin.write(b"no newline")
    server_like.stdin.close()
    check(done.wait(10), f"{cmd}: still running 10 s after the end of its input")
    server_like.wait(10)
    check(server_like.returncode == 0, f"exit status {server_like.returncode}")
    check(lines[-2] == "select get stdin no newline", f"the last line without a newline: {lines[-2:]}")
    timeouts = lines.count("timeout: no input for 0.3 s")
    check(lines[-1] == f"model=select lines=4 timeouts={timeouts}" and timeouts >= 1, f"last line {lines[-1]!r}")
    check(server_like.stderr.read() == b"", "stderr is not empty")
    stdin_signals(cmd)


def stdin_signals(cmd):
    """A stdin that never ends (as a terminal): SIGINT and SIGTERM end the loop with the summary, exit 0."""
    for signo in (signal.SIGINT, signal.SIGTERM):
        p = subprocess.Popen([str(c) for c in cmd], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, env=netlib.lab_env())
        first = p.stdout.readline()  # a timeout line: it is in its loop
        check(first.startswith(b"timeout:"), f"first line {first!r}")
        p.send_signal(signo)
        try:
            out, err = p.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()
            out, err = p.communicate()
            netlib.fail(f"{cmd}: still running 10 s after {signal.Signals(signo).name}")
        check(p.returncode == 0, f"{cmd} {signal.Signals(signo).name}: exit {p.returncode}, {err!r}")
        last = out.decode().splitlines()[-1:]
        check(last and re.fullmatch(r"model=select lines=0 timeouts=\d+", last[0]) is not None,
              f"{signal.Signals(signo).name}: last line {last}")


# ---------------------------------------------------------------- two listeners

def two_listeners(lang):
    cmd = prog(lang, "mux-two-listeners", "two_listeners.py") + ["--port", "0", "--port2", "0"]
    with Server(cmd) as server:
        second = server.wait_line(lambda line: line.startswith("listening on"), start=1, what="a second listening line")
        port2 = int(second.rsplit(":", 1)[1]) if second else 0
        check(port2 not in (0, server.port), f"second port {port2}, first {server.port}")
        threads_before = server.threads()
        before = server.fds()
        idle1 = connect(server.port)  # a client per port that says nothing: each has its thread
        idle2 = connect(port2)
        results = {}
        clients = [threading.Thread(target=conversation, args=(port, 10, results, i))
                   for i, port in enumerate((server.port, port2, server.port, port2))]
        for c in clients:
            c.start()
        for c in clients:
            c.join(netlib.TIMEOUT_S)
        for i in range(4):
            check(results.get(i) is True, f"{server.name}: client {i} with idle clients on both ports: {results.get(i)}")
        exchange(port2, MIB, f"{server.name}: 1 MiB on the second port")
        for cmd_client in ECHO_CLIENTS:
            for port in (server.port, port2):
                r = run_client(cmd_client + ["--port", str(port)])
                check(r.stdout == b"Received 'Hello, world'\n", f"{cmd_client[-1]} port {port}: {r.stdout!r}")
        idle1.close()
        netlib.reset(idle2)
        check(settle(lambda: server.fds() == before), f"{server.name}: descriptors {server.fds()}, before {before}")
        if lang == "cpp":  # threads end with their clients; the next accept joins them
            exchange(server.port, b"x", "one more client")
            allowed = threads_before + 1 + (1 if SANITIZER == "thread" else 0)
            check(settle(lambda: server.threads() <= allowed),
                  f"{server.name}: {server.threads()} threads, at most {allowed} expected")
        served = 2 + 4 + 1 + 2 * len(ECHO_CLIENTS) + (1 if lang == "cpp" else 0) + 1
        hold = connect(server.port)  # SIGTERM with a client blocked in its thread: exit 0, summary
        check(settle(lambda: sum(line.startswith("get request") for line in server.output()) == served),
              f"{server.name}: {served} connections, not all accepted: {server.output()}")
        server.stop()
        hold.close()
    out = norm(server.output())
    check(out.count("get request on 127.0.0.1:# from 127.0.0.1:#") == served, f"{server.name}: {out}")
    check(re.fullmatch(rf"model=select\+threads served={served} bytes=\d+", out[-1]), f"last line {out[-1]!r}")
    errors = server.errors()  # the one client that reset
    check(len(errors) == 1 and re.fullmatch(r"connection from 127\.0\.0\.1:\d+ ended: Connection reset by peer", errors[0]),
          f"{server.name}: stderr {errors}, expected the one reset")


# ---------------------------------------------------------------- HTTP on epoll

def lab08():
    import lab08_check
    lab08_check.SANITIZER = SANITIZER
    # lab 08's checks, on our servers; "threaded" is the name under which they expect concurrent clients
    servers = {"cpp": [BIN / "mux-http-hello"], "python": [sys.executable, PY / "http_hello_epoll.py"],
               "iterative": [BIN / "http-hello-iterative"],
               # the same loop on the other back ends (--selector)
               "cpp-select": [BIN / "mux-http-hello", "--selector", "select"],
               "cpp-poll": [BIN / "mux-http-hello", "--selector", "poll"]}
    lab08_check.server_cmd = lambda bin_dir, name: servers[name]
    return lab08_check


def http(test, lang):
    m = lab08()
    m.server_cmd = (lambda cmd: lambda bin_dir, name: cmd)(m.server_cmd(BIN, lang))
    {"curl": m.test_curl, "protocol": m.test_protocol, "faults": m.test_faults}[test](BIN, "threaded")


def http_same_bytes():
    m = lab08()
    got = {}
    for name in ("iterative", "cpp", "python"):
        with m.start(BIN, name) as server:
            got[name] = m.answers(server.port)
    for i, request in enumerate(m.REQUESTS):
        ref, cpp, py = got["iterative"][i], got["cpp"][i], got["python"][i]
        if check(ref == cpp == py, f"request {request[:60]!r}: lab 08 {ref!r}, mux-http-hello {cpp!r}, python {py!r}"):
            print(f"ok: {request[:40]!r}... -> {cpp.split(m.CRLF)[0].decode()}")


def http_many(lang):
    m = lab08()
    with m.start(BIN, lang) as server:
        before = server.fds()
        idle = []
        for i in range(200):
            s = connect(server.port)
            if i % 2:
                s.sendall(b"GET / HTTP/1.1\r\nHo")  # half a request, then silence
            idle.append(s)
        start = time.monotonic()
        for s in idle[::2]:  # the others: a whole request each, answered while the half ones wait
            s.sendall(m.GET)
        for s in idle[::2]:
            check(m.read_exact(s, len(m.HELLO)) == m.HELLO, "a client among 200: no answer")
        took = time.monotonic() - start
        check(took < 5, f"100 answers took {took:.1f} s with 100 clients idle mid-request")
        for s in idle[1::2]:
            s.sendall(b"st: a\r\nConnection: close\r\n\r\n")
        for s in idle[1::2]:
            check(recv_until_closed(s) == m.HELLO_CLOSE, "a client that finished its request late: no answer")
        for s in idle:
            s.close()
        check(settle(lambda: server.fds() == before), f"{server.name}: descriptors {len(server.fds())}, "
              f"before {len(before)}")
        server.stop()
    model = lang.split("-")[1] if lang.startswith("cpp-") else "epoll"
    check(server.output()[-1] == f"model={model} served=200 requests=200", f"last line {server.output()[-1]!r}")


if __name__ == "__main__":
    command, *rest = sys.argv[3:]
    if command.startswith("http-") and command[5:] in ("curl", "protocol", "faults"):
        http(command[5:], *rest)
    else:
        {"echo": echo, "no-drain": no_drain, "fd-setsize": fd_setsize, "faults": faults, "signals": signals, "stdin": stdin,
         "two-listeners": two_listeners, "http-same-bytes": http_same_bytes, "http-many": http_many}[command](*rest)
    sys.exit(netlib.finish())
