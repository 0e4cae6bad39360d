#!/usr/bin/env python3
"""Lab 13's checks of fanout-client (tests/net/lab13_client.cmake), against a
small fan-out server of this script (a ThreadingTCPServer on port 0, one
behaviour per check).

    lab13_client_check.py --bin-dir DIR summary    the line's keys in order and its values: every request ok,
                                                   counted by the server too, exit 0, nothing on stderr
    lab13_client_check.py --bin-dir DIR json       --json FILE: the same keys and values as the line
    lab13_client_check.py --bin-dir DIR forking    --children K --loops L: the same line, K x L requests
    lab13_client_check.py --bin-dir DIR errors     short replies, a closed port: exit 1, the line still printed
                                                   with the counts, the first message of each kind on stderr
    lab13_client_check.py --bin-dir DIR cap        a slow server and --cap-s: unfinished counted, exit 1
    lab13_client_check.py --bin-dir DIR fd-limit   a hard descriptor limit below --clients: one line on stderr
                                                   says so, fd_limit= is that limit, every request still ok
    lab13_client_check.py --bin-dir DIR sources    --sources 3: the server sees 127.0.0.1, .2 and .3
"""
import argparse
import json
import pathlib
import resource
import socket
import socketserver
import subprocess
import sys
import tempfile
import threading
import time

TESTS = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(TESTS))
import netlib  # noqa: E402
from netlib import check, fail  # noqa: E402

KEYS = ["clients", "requests", "bytes", "ok", "wall_s", "rps", "p50_ms", "p90_ms", "p99_ms", "max_ms",
        "refused", "reset", "timed_out", "short", "other", "unfinished", "fd_limit"]
PATTERN = b"0123456789abcdef"


def reply(n):
    return (PATTERN * (n // len(PATTERN) + 1))[:n]


class FanoutServer(socketserver.ThreadingTCPServer):
    """The protocol of conclab/fanout.hpp; `mode` good, short (half the bytes, then close) or slow (0.2 s)."""
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 1024  # the default 5 would drop SYNs of 200 clients at once

    def __init__(self, mode):
        self.mode = mode
        self.served = 0
        self.peers = {}
        self.lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)

    @property
    def port(self):
        return self.server_address[1]

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.shutdown()
        self.server_close()
        return False


class Handler(socketserver.StreamRequestHandler):
    def handle(self):
        self.request.settimeout(netlib.TIMEOUT_S)
        n = int(self.rfile.readline(32))
        with self.server.lock:
            self.server.served += 1
            self.server.peers[self.client_address[0]] = self.server.peers.get(self.client_address[0], 0) + 1
        if self.server.mode == "short":
            self.wfile.write(reply(n // 2))
            return
        if self.server.mode == "slow":
            time.sleep(0.2)
        self.wfile.write(reply(n))
        self.wfile.flush()
        while self.request.recv(4096):  # the client closes first
            pass


def client(bin_dir):
    return [bin_dir / "fanout-client"]


def parse_line(stdout):
    """The summary line as an ordered dict of strings (None if there is not exactly one line)."""
    lines = stdout.decode(errors="replace").splitlines()
    if not check(len(lines) == 1, f"stdout has {len(lines)} lines, expected one: {lines}"):
        return None
    pairs = [item.split("=", 1) for item in lines[0].split(" ")]
    if not check(all(len(p) == 2 for p in pairs), f"not key=value pairs: {lines[0]}"):
        return None
    check([k for k, _ in pairs] == KEYS, f"keys {[k for k, _ in pairs]}, expected {KEYS}")
    return dict(pairs)


def expect(line, **values):
    for key, value in values.items():
        check(line.get(key) == str(value), f"{key}={line.get(key)}, expected {value}; line: {line}")


def expect_sane_latencies(line):
    p = [float(line[k]) for k in ("p50_ms", "p90_ms", "p99_ms", "max_ms")]
    check(0 < p[0] <= p[1] <= p[2] <= p[3], f"latencies not 0 < p50 <= p90 <= p99 <= max: {p}")
    wall, rps, ok = float(line["wall_s"]), float(line["rps"]), int(line["ok"])
    # wall_s is rounded to 1 ms on the line: rps lies between ok / (wall_s +- 0.5 ms)
    low, high = ok / (wall + 0.0005), ok / max(wall - 0.0005, 1e-9)
    check(wall > 0 and low - 0.1 <= rps <= high + 0.1, f"rps={rps}, expected ok / wall_s, in [{low:.1f}, {high:.1f}]")


def hard_fd_limit():
    return resource.getrlimit(resource.RLIMIT_NOFILE)[1]


def all_ok(bin_dir, args, clients, requests, bytes_):
    """A run against a good server: the line's values, the server's count, exit 0, nothing on stderr."""
    with FanoutServer("good") as server:
        result = netlib.run_client(client(bin_dir) + ["--port", server.port, "--bytes", bytes_] + args)
        line = parse_line(result.stdout)
        if line:
            expect(line, clients=clients, requests=requests, bytes=bytes_, ok=clients * requests, refused=0, reset=0,
                   timed_out=0, short=0, other=0, unfinished=0, fd_limit=hard_fd_limit())
            expect_sane_latencies(line)
        check(result.stderr == b"", f"stderr: {result.stderr!r}")
        check(server.served == clients * requests, f"the server served {server.served}, expected {clients * requests}")


def test_summary(bin_dir):
    all_ok(bin_dir, ["--clients", "5", "--requests", "4"], 5, 4, 1000)


def test_json(bin_dir):
    with FanoutServer("good") as server, tempfile.TemporaryDirectory() as tmp:
        out = pathlib.Path(tmp) / "run.json"
        result = netlib.run_client(client(bin_dir) + ["--port", server.port, "--clients", "3", "--requests", "2",
                                                      "--json", out])
        line = parse_line(result.stdout)
        if not check(out.exists(), "--json wrote no file"):
            return
        data = json.loads(out.read_text())
        check(list(data) == KEYS, f"JSON keys {list(data)}, expected {KEYS}")
        if line:
            for key in KEYS:
                check(float(data[key]) == float(line[key]), f"JSON {key}={data[key]}, the line says {line[key]}")
            check(all(isinstance(data[k], int) for k in KEYS if "." not in line[k]), f"integers in the JSON: {data}")


def test_forking(bin_dir):
    all_ok(bin_dir, ["--children", "3", "--loops", "4"], 3, 4, 4000)


def test_errors(bin_dir):
    for args in (["--clients", "3", "--requests", "2"], ["--children", "3", "--loops", "2"]):
        with FanoutServer("short") as server:
            result = netlib.run_client(client(bin_dir) + ["--port", server.port, "--bytes", "1000"] + args, expect=1)
            line = parse_line(result.stdout)
            if line:
                expect(line, ok=0, short=6, refused=0, reset=0, timed_out=0, other=0, unfinished=0)
            err = result.stderr.decode(errors="replace")
            check("6 short, the first: the server closed after 500 of 1000 bytes" in err, f"stderr: {err!r}")
        # a port where nothing listens: bound, never listening
        with socket.socket() as closed:
            closed.bind(("127.0.0.1", 0))
            result = netlib.run_client(client(bin_dir) + ["--port", closed.getsockname()[1]] + args, expect=1)
            line = parse_line(result.stdout)
            if line:
                expect(line, ok=0, refused=6, short=0, unfinished=0, p50_ms="0.000", max_ms="0.000")
            err = result.stderr.decode(errors="replace")
            check("6 refused, the first: connect: Connection refused; 127.0.0.1:" in err, f"stderr: {err!r}")


def test_cap(bin_dir):
    with FanoutServer("slow") as server:
        started = time.monotonic()
        result = netlib.run_client(client(bin_dir) + ["--port", server.port, "--clients", "2", "--requests", "10",
                                                      "--cap-s", "0.5"], expect=1)
        took = time.monotonic() - started
        line = parse_line(result.stdout)
        if line:
            ok, unfinished = int(line["ok"]), int(line["unfinished"])
            check(ok >= 2 and unfinished >= 2 and ok + unfinished == 20, f"ok={ok} unfinished={unfinished}")
            check(0.45 <= float(line["wall_s"]) <= 0.6, f"wall_s={line['wall_s']}, expected the cap, 0.5")
        check(took < 5, f"the client took {took:.1f} s with --cap-s 0.5")
        check(b"unfinished when the cap of 0.5 s was reached" in result.stderr, f"stderr: {result.stderr!r}")


def test_fd_limit(bin_dir):
    hard = 150

    def lower_limit():
        resource.setrlimit(resource.RLIMIT_NOFILE, (64, hard))

    with FanoutServer("good") as server:
        cmd = [str(c) for c in client(bin_dir) + ["--port", server.port, "--clients", "200"]]
        result = subprocess.run(cmd, capture_output=True, timeout=netlib.TIMEOUT_S, preexec_fn=lower_limit)
        check(result.returncode == 0, f"exit {result.returncode}; stderr {result.stderr!r}")
        line = parse_line(result.stdout)
        if line:
            expect(line, clients=200, ok=200, fd_limit=hard, unfinished=0)
        err = result.stderr.decode(errors="replace").splitlines()
        check(len(err) == 1 and f"only {hard - 64} of the 200 clients can be connected at once" in err[0]
              and f"the descriptor limit is {hard}" in err[0], f"stderr: {err}")


def test_sources(bin_dir):
    with FanoutServer("good") as server:
        netlib.run_client(client(bin_dir) + ["--port", server.port, "--clients", "2", "--requests", "3",
                                             "--sources", "3"])
        check(server.peers == {"127.0.0.1": 2, "127.0.0.2": 2, "127.0.0.3": 2}, f"peers {server.peers}")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--bin-dir", type=pathlib.Path, required=True)
    parser.add_argument("test", choices=["summary", "json", "forking", "errors", "cap", "fd-limit", "sources"])
    args = parser.parse_args()
    globals()["test_" + args.test.replace("-", "_")](args.bin_dir)
    return netlib.finish()


if __name__ == "__main__":
    sys.exit(main())
