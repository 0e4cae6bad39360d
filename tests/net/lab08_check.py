#!/usr/bin/env python3
"""Lab 08's checks (tests/net/lab08.cmake): the HTTP/1.1 Hello, World servers.

    lab08_check.py --bin-dir DIR curl SERVER       curl sees the exact answer, keep-alive reuses one connection
    lab08_check.py --bin-dir DIR same-bytes        C++ (both) and Python answer the same bytes to the same requests
    lab08_check.py --bin-dir DIR protocol SERVER   pipelining, Connection: close, HTTP/1.0, 431, 400, bodies, HEAD
    lab08_check.py --bin-dir DIR faults SERVER     idle, cut, reset and flooding clients; no descriptor leak; SIGTERM
    lab08_check.py --bin-dir DIR signals SERVER    SIGINT and SIGTERM, idle and with a client mid-request: exit 0, summary
    lab08_check.py --bin-dir DIR threads-joined    the threaded server joins its finished threads as it goes
    lab08_check.py --bin-dir DIR wrk SERVER        a 3-second wrk run with no error (prints the requests/s)
    lab08_check.py --bin-dir DIR seed              the seed's server, as it is: no length, one answer, then close

SERVER is iterative, threaded (the C++ servers) or python (python/http_hello.py).
"""
import argparse
import pathlib
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

TESTS = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(TESTS))
import netlib  # noqa: E402
from netlib import check, fail  # noqa: E402

LAB = TESTS.parent / "labs" / "08-http-hello"
SANITIZER = ""  # --sanitizer
T = netlib.TIMEOUT_S
WAIT_S = 5  # for an answer or a close on loopback: short, so that a failing check ends well within ctest's timeout


def connect(port):
    return netlib.connect(port, timeout=WAIT_S)


def answer(status=200, reason="OK", body=b"Hello, World", connection=None, head=False, extra=""):
    """The bytes the corrected servers answer."""
    r = (f"HTTP/1.1 {status} {reason}\r\nContent-Type: text/plain; charset=utf-8\r\n"
         f"Content-Length: {len(body)}\r\n{extra}")
    if connection:
        r += f"Connection: {connection}\r\n"
    return (r + "\r\n").encode() + (b"" if head else body)


HELLO = answer()
HELLO_CLOSE = answer(connection="close")
BAD = answer(400, "Bad Request", b"Bad Request", "close")
TOO_LARGE = answer(431, "Request Header Fields Too Large", b"Request Header Fields Too Large", "close")
GET = b"GET / HTTP/1.1\r\nHost: lab08\r\n\r\n"
CRLF = b"\r\n"


def server_cmd(bin_dir, name):
    return {"iterative": [bin_dir / "http-hello-iterative"],
            "threaded": [bin_dir / "http-hello-threaded"],
            "python": [sys.executable, LAB / "python" / "http_hello.py"],
            "seed": [sys.executable, LAB / "python" / "seed_server.py"]}[name]


def start(bin_dir, name, *extra):
    return netlib.Server(server_cmd(bin_dir, name) + ["--host", "127.0.0.1", "--port", "0", *extra])


def read_exact(sock, n):
    """n bytes, or fewer if the server closes, resets or stops sending (the socket's timeout)."""
    data = b""
    try:
        while len(data) < n:
            chunk = sock.recv(n - len(data))
            if not chunk:
                break
            data += chunk
    except OSError as e:
        print(f"after {len(data)} of {n} bytes: {e}", file=sys.stderr)
    return data


def closed_after(sock, what):
    """Whether the server closes `sock` (EOF) with nothing more sent."""
    try:
        rest = sock.recv(65536)
    except OSError as e:
        return check(False, f"{what}: {e} instead of a clean close")
    return check(rest == b"", f"{what}: expected the server to close, got {rest[:80]!r}")


def ask(port, request, expect, what, then_closed=True):
    """Send `request` on a new connection, require exactly `expect` back (and a close)."""
    with connect(port) as s:
        s.sendall(request)
        got = read_exact(s, len(expect))
        if check(got == expect, f"{what}: got {got!r}, expected {expect!r}") and then_closed:
            closed_after(s, what)


leaked = []


def fds_settle(server, before, what):
    """The server's descriptors are back to `before` (once one check saw a leak, the next ones do not wait)."""
    netlib.settle(lambda: server.fds() == before, timeout=0 if leaked else WAIT_S)
    after = server.fds()
    if not check(after == before, f"{server.name}: descriptors after {what}: {after}, before: {before}"):
        leaked.append(what)


# --- curl ---------------------------------------------------------------------------------------


def curl(*args):
    result = subprocess.run(["curl", "-sS", "--max-time", str(T), *args], capture_output=True, timeout=T + 5)
    check(result.returncode == 0, f"curl {' '.join(args)}: exit {result.returncode}: {result.stderr!r}")
    return result.stdout


def connects(out):
    return sum(int(n) for n in out.split())


def test_curl(bin_dir, name):
    if not shutil.which("curl"):
        fail("curl is not installed (apt-get install -y curl; scripts/setup installs it)")
        return
    with start(bin_dir, name) as server:
        url = f"http://127.0.0.1:{server.port}/"
        before = server.fds()
        out = curl("-i", url)
        check(out == HELLO, f"curl -i: {out!r}, expected {HELLO!r}")
        out = curl("-o", "/dev/null", "-o", "/dev/null", "-w", "%{num_connects}\n", url, url).decode()
        check(connects(out) == 1, f"two URLs in one curl call: {connects(out)} connections, expected 1 (keep-alive)")
        out = curl("-H", "Connection: close", "-o", "/dev/null", "-o", "/dev/null", "-w", "%{num_connects}\n",
                   url, url).decode()
        check(connects(out) == 2, f"with Connection: close: {connects(out)} connections, expected 2")
        out = curl("-i", "--http1.0", url)
        check(out == HELLO_CLOSE, f"curl --http1.0: {out!r}, expected {HELLO_CLOSE!r}")
        out = curl("-I", url)
        check(out == answer(head=True), f"curl -I (HEAD): {out!r}")
        out = curl("-i", "-d", "x=1", url)
        check(out == answer(405, "Method Not Allowed", b"Method Not Allowed", extra="Allow: GET, HEAD\r\n"),
              f"curl -d (POST): {out!r}")
        out = curl("-i", "-H", "X-Big: " + "a" * 9000, url)
        check(out == TOO_LARGE, f"curl with a 9000-byte header: {out!r}")
        fds_settle(server, before, "the curl runs")


# --- the same bytes from every corrected server -------------------------------------------------

REQUESTS = [
    GET + b"HEAD / HTTP/1.1\r\nHost: a\r\n\r\n" + b"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc"
    + b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n" + b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
    b"GET / HTTP/1.0\r\n\r\n",
    b"bad\r\n\r\n",
    b"GET / HTTP/1.1\r\nX-Big: " + b"a" * 9000 + b"\r\n\r\n",
    b"GET / HTTP/2.0\r\nHost: a\r\n\r\n",
    b"GET / HTTP/1.1\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
    b"\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\nconnection: Upgrade, CLOSE\r\n\r\n",
    b"get / HTTP/1.1\r\nHost: a\r\n\r\n" + b"GET / HTTP/1.1\r\nHost: a\r\n Folded: x\r\n\r\n",
    b"HEAD / HTTP/1.1\r\nHost: a\r\nX-Big: " + b"a" * 9000 + b"\r\n\r\n",
    b"GET  / HTTP/1.1\r\nHost: a\r\n\r\n",
]
PIPELINED = HELLO + answer(head=True) + answer(405, "Method Not Allowed", b"Method Not Allowed",
                                               extra="Allow: GET, HEAD\r\n") + answer(connection="keep-alive") + HELLO_CLOSE


def answers(port):
    out = []
    for request in REQUESTS:
        with connect(port) as s:
            s.sendall(request)
            try:
                out.append(netlib.recv_until_closed(s))
            except OSError as e:
                out.append(f"{e} after {request[:40]!r}")
    return out


def test_same_bytes(bin_dir):
    got = {}
    for name in ("iterative", "threaded", "python"):
        with start(bin_dir, name) as server:
            got[name] = answers(server.port)
    check(got["iterative"][0] == PIPELINED, f"pipelined requests: {got['iterative'][0]!r}, expected {PIPELINED!r}")
    for i, request in enumerate(REQUESTS):
        cpp, threaded, py = got["iterative"][i], got["threaded"][i], got["python"][i]
        check(cpp == threaded == py, f"request {request[:60]!r}: iterative {cpp!r}, threaded {threaded!r}, "
              f"python {py!r}")
        if cpp == threaded == py:
            print(f"ok: {request[:40]!r}... -> {cpp.split(CRLF)[0].decode()}")


# --- the protocol -------------------------------------------------------------------------------


def test_protocol(bin_dir, name):
    with start(bin_dir, name) as server:
        port = server.port
        before = server.fds()
        with connect(port) as s:  # three pipelined requests, then one more on the same connection
            s.sendall(GET * 3)
            got = read_exact(s, 3 * len(HELLO))
            check(got == HELLO * 3, f"three pipelined requests: {got!r}")
            s.sendall(GET)
            check(read_exact(s, len(HELLO)) == HELLO, "a fourth request on the same connection: no answer")
        ask(port, b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", HELLO_CLOSE, "Connection: close")
        ask(port, b"GET / HTTP/1.0\r\n\r\n", HELLO_CLOSE, "HTTP/1.0")
        ask(port, b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n" * 2 + b"GET / HTTP/1.0\r\n\r\n",
            answer(connection="keep-alive") * 2 + HELLO_CLOSE, "HTTP/1.0 with Connection: keep-alive")
        ask(port, b"GET / HTTP/1.1\r\nHost: a\r\nX-Big: " + b"a" * 9000 + b"\r\n\r\n", TOO_LARGE, "a 9000-byte header")
        ask(port, b"GET / HTTP/1.1\r\nHost: a\r\n" + b"X-Many: a\r\n" * 1000 + b"\r\n", TOO_LARGE, "1000 headers")
        ask(port, b"GET /" + b"a" * 10000 + b" HTTP/1.1\r\n\r\n", TOO_LARGE, "a 10000-byte request line")
        ask(port, b"GET / HTTP/1.1\r\nHost: a\r\n" + b"X-Fits: " + b"a" * 7000 + b"\r\nConnection: close\r\n\r\n",
            HELLO_CLOSE, "a 7000-byte header (under the 8 KiB limit)")
        ask(port, b"bad\r\n\r\n", BAD, "a malformed request line")
        ask(port, b"GET / HTTP/1.1 extra\r\nHost: a\r\n\r\n", BAD, "a request line with four words")
        ask(port, b"GET / HTTP/1.1\r\nHost: a\r\nno colon\r\n\r\n", BAD, "a header without a colon")
        ask(port, b"GET / HTTP/1.1\r\n\r\n", BAD, "HTTP/1.1 without Host")
        body = b"x" * 100_000  # read and thrown away: the next request is still understood
        ask(port, b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n\r\n" % len(body) + body
            + b"HEAD / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
            answer(405, "Method Not Allowed", b"Method Not Allowed", extra="Allow: GET, HEAD\r\n")
            + answer(connection="close", head=True), "a POST with a 100000-byte body, then HEAD")

        # A keep-alive client holds the iterative servers: the next one waits until it leaves.
        with connect(port) as a:
            a.sendall(GET)
            check(read_exact(a, len(HELLO)) == HELLO, "client A: no answer")
            with connect(port) as b:
                b.sendall(GET)
                if name == "threaded":
                    check(read_exact(b, len(HELLO)) == HELLO, "client B: not answered while A is connected")
                else:
                    b.settimeout(0.5)
                    try:
                        early = b.recv(100)
                    except TimeoutError:
                        early = None
                    check(early is None, f"client B: answered ({early!r}) while A holds the one-at-a-time server")
                    b.settimeout(WAIT_S)
                    a.close()
                    check(read_exact(b, len(HELLO)) == HELLO, "client B: not answered after A left")
        fds_settle(server, before, "the protocol checks")

    with start(bin_dir, name, "--max-requests", "3", "--max-header-bytes", "100") as server:
        ask(server.port, GET * 4, HELLO * 2 + HELLO_CLOSE, "--max-requests 3: the third answer closes")
        ask(server.port, b"GET / HTTP/1.1\r\nHost: a\r\nX-Big: " + b"a" * 100 + b"\r\n\r\n", TOO_LARGE,
            "--max-header-bytes 100: a 100-byte header")


# --- faults -------------------------------------------------------------------------------------


def test_faults(bin_dir, name):
    with start(bin_dir, name, "--idle-timeout", "0.5") as server:
        port = server.port
        before = server.fds()
        threads_before = server.threads()

        def served_still(what):
            ask(port, b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", HELLO_CLOSE, f"a request after {what}")
            fds_settle(server, before, what)

        for what, data in (("an idle client", b""), ("a client idle mid-request", b"GET / HTTP/1.1\r\nHo"),
                           ("a keep-alive client gone idle", GET)):
            with connect(port) as s:
                started = time.monotonic()
                s.sendall(data)
                if data == GET:
                    read_exact(s, len(HELLO))
                if closed_after(s, what):
                    waited = time.monotonic() - started
                    check(waited >= 0.4, f"{what}: closed after {waited:.2f} s, before --idle-timeout 0.5")
            served_still(what)

        for what, data in (("a client gone mid-request", b"GET / HTTP/1.1\r\nHost: a\r\nX-A"),
                           ("a client gone mid-body", b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1000\r\n\r\nab")):
            with connect(port) as s:
                s.sendall(data)
            served_still(what)

        for what, data in (("a reset mid-request", b"GET / HTTP/1.1\r\nHo"), ("a reset before reading", GET * 50)):
            s = connect(port)
            s.sendall(data)
            netlib.reset(s)
            served_still(what)

        def flood(sock, data, times):
            try:
                for _ in range(times):
                    sock.sendall(data)
            except OSError:
                pass  # the server closed: expected

        for what, data, times in (("a flood of bytes with no end of line", b"A" * 65536, 64),
                                  ("a flood of requests never read", GET * 1000, 100)):
            with connect(port) as s:
                sender = threading.Thread(target=flood, args=(s, data, times))
                sender.start()
                sender.join(2 * WAIT_S)
                check(not sender.is_alive(), f"{what}: the server neither read nor closed within {2 * WAIT_S} s")
                netlib.reset(s)
            served_still(what)

        check(server.alive(), f"{name}: died during the faults: {server.errors()}")
        if name == "threaded":
            # ThreadSanitizer starts a thread of its own with the program's first thread.
            allowed = threads_before + (1 if SANITIZER == "thread" else 0)
            netlib.settle(lambda: server.threads() <= allowed)
            check(server.threads() <= allowed, f"threads: {server.threads()} after the faults, {threads_before} before")
        idle = connect(port)  # SIGTERM with a client connected: exit 0 and the summary
        idle.sendall(b"GET / HTTP/1.1\r\n")
        server.stop()
        idle.close()
        last = server.output()[-1] if server.output() else ""
        check(re.fullmatch(r"model=\w+ served=\d+ requests=\d+", last), f"last line after SIGTERM: {last!r}")
        check(server.errors() == [], f"stderr: {server.errors()}")


def test_signals(bin_dir, name):
    """SIGINT and SIGTERM each stop the server with exit 0 and its summary, idle or with a client mid-request."""
    for signo in (signal.SIGINT, signal.SIGTERM):
        for with_client in (False, True):
            what = f"{name} after {signal.Signals(signo).name}{' with a client' if with_client else ''}"
            with start(bin_dir, name) as server:
                s = None
                if with_client:  # one request answered, then half of the next when the signal comes
                    s = connect(server.port)
                    s.sendall(GET)
                    check(read_exact(s, len(HELLO)) == HELLO, f"{what}: no answer before the signal")
                    s.sendall(b"GET / HTTP/1.1\r\n")
                server.stop(signo)
                if s:
                    s.close()
                model = "iterative" if name == "python" else name
                want = f"model={model} served={1 if with_client else 0} requests={1 if with_client else 0}"
                check(server.output()[-1:] == [want], f"{what}: last line {server.output()[-1:]}, expected {want}")
                check(server.errors() == [], f"{what}: stderr {server.errors()}")


def test_threads_joined(bin_dir):
    """Finished threads are joined as the server goes: their stacks stay mapped until then."""
    if SANITIZER == "thread":
        print("skipped: ThreadSanitizer maps memory of its own for every thread, joined or not")
        return
    with start(bin_dir, "threaded") as server:
        def mappings():
            return len(open(f"/proc/{server.proc.pid}/maps").read().splitlines())

        before = mappings()
        for i in range(150):
            ask(server.port, b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", HELLO_CLOSE, f"request {i}")
        after = mappings()
        print(f"memory mappings: {before} before 150 connections, {after} after")
        check(after - before < 30, f"memory mappings grew from {before} to {after} over 150 connections: "
              "finished threads are not joined")


# --- wrk ----------------------------------------------------------------------------------------


def test_wrk(bin_dir, name):
    if not shutil.which("wrk"):
        fail("wrk is not installed: apt-get install -y wrk (scripts/setup installs it)")
        return
    with start(bin_dir, name) as server:
        cmd = ["wrk", "-t2", "-c16", "-d3s", f"http://127.0.0.1:{server.port}/"]
        try:
            result = subprocess.run(cmd, capture_output=True, text=True, timeout=T + 10)
        except subprocess.TimeoutExpired:
            fail(f"{' '.join(cmd)}: still running after {T + 10} s")
            return
        print(result.stdout)
        check(result.returncode == 0, f"wrk: exit {result.returncode}: {result.stderr}")
        check("Non-2xx or 3xx responses" not in result.stdout, "wrk saw answers that are not 2xx")
        check("Socket errors" not in result.stdout, "wrk saw socket errors")
        m = re.search(r"^Requests/sec:\s+([\d.]+)", result.stdout, re.M)
        if check(m and float(m.group(1)) > 0, "wrk: no Requests/sec line"):
            print(f"{name}: {float(m.group(1)):.0f} requests/s")
        check(server.alive(), f"{name}: died under wrk: {server.errors()}")


# --- the seed's server --------------------------------------------------------------------------


def test_seed(bin_dir):
    with start(bin_dir, "seed") as server:
        with connect(server.port) as s:  # two pipelined requests: one answer, no length, then a close
            s.sendall(GET * 2)
            got = netlib.recv_until_closed(s)
        check(got == b"HTTP/1.1 200 OK\r\n\r\nHello, World", f"the seed's answer: {got!r}")
        if shutil.which("curl"):
            out = curl("-i", f"http://127.0.0.1:{server.port}/")
            check(out == b"HTTP/1.1 200 OK\r\n\r\nHello, World", f"curl against the seed: {out!r}")
        s = connect(server.port)
        netlib.reset(s)
        ask(server.port, GET, b"HTTP/1.1 200 OK\r\n\r\nHello, World", "after a reset")
        server.stop()
        summary = f"model=seed served={4 if shutil.which('curl') else 3}"
        check(server.output()[-1:] == [summary], f"summary: {server.output()[-1:]}, expected {summary}")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--bin-dir", type=pathlib.Path, required=True)
    parser.add_argument("--sanitizer", default="", help="CONCLAB_SANITIZER of the build (thread, address or none)")
    parser.add_argument("test", choices=["curl", "same-bytes", "protocol", "faults", "signals", "threads-joined", "wrk", "seed"])
    parser.add_argument("server", nargs="?", choices=["iterative", "threaded", "python"])
    args = parser.parse_args()
    global SANITIZER
    SANITIZER = args.sanitizer
    tests = {"curl": test_curl, "protocol": test_protocol, "faults": test_faults, "signals": test_signals, "wrk": test_wrk}
    if args.test in tests:
        tests[args.test](args.bin_dir, args.server)
    else:
        {"same-bytes": test_same_bytes, "threads-joined": test_threads_joined, "seed": test_seed}[args.test](args.bin_dir)
    return netlib.finish()


if __name__ == "__main__":
    sys.exit(main())
