#!/usr/bin/env python3
"""CPython peers of conclab-bench's fanout/ rows: socketserver serving the fan-out protocol.

    bench_fanout.py --client build/release/bin/fanout-client --out python-fanout.json

python/fanout/<model>/clients:C/sleep_ms:T   C clients at once against
    labs/13-server-designs/python/fanout_server.py, each request held T ms:
    iterative               socketserver.TCPServer (one connection at a time)
    socketserver-threading  socketserver.ThreadingTCPServer
    socketserver-forking    socketserver.ForkingTCPServer

The clients are conclab's fanout-client (the same epoll driver conclab-bench
runs in-process), so that only the server differs between the two languages;
each repetition starts the server, runs the fan-out until --min-time has
passed (at least once), stops it with SIGTERM and reads its summary line (its
CPU time, children included). The cases, the connections of a sleep-free case
and the budget are conclab-bench's (bench/fanout.cpp, bench/main.cpp). The
latency percentiles of a repetition are the means of its iterations' (each
iteration's are exact); conclab-bench pools every latency of a repetition.
"""
import argparse
import math
import os
import pathlib
import re
import signal
import subprocess
import sys

from bench_workers import OneLineParser, parse_run_args, run_row, write_results

ROOT = pathlib.Path(__file__).resolve().parents[2]
SERVER = ROOT / "labs/13-server-designs/python/fanout_server.py"
BYTES = 4000  # kFanoutBytes
CASES = "5x0,100x0,1000x10,100x100,1000x100,10000x1000"  # conclab-bench's --fanout-cases
CONNECTIONS = 2000  # conclab-bench's --fanout-connections
LONG_ROW_S = 1.0
START_S, STOP_S = 30, 60


def at_most_processes(clients):
    return (f"{clients} processes at once (one per client): past 1,000 this machine's pids and memory decide, "
            "not the design") if clients > 1000 else ""


# row name -> (fanout_server.py --model, concurrency(C), why it cannot take C or "")
MODELS = {
    "iterative": ("tcp", lambda clients: 1, lambda clients: ""),
    "socketserver-threading": ("threading", lambda clients: clients, lambda clients: ""),
    # ForkingMixIn.max_children = 40: more clients wait for a child to end.
    "socketserver-forking": ("forking", lambda clients: min(clients, 40), at_most_processes),
}


class Impossible(Exception):
    pass


def requests_per_client(clients, sleep_ms, connections):
    return max(1, connections // clients) if sleep_ms == 0 else 1


def ideal_seconds(concurrency, clients, sleep_ms, connections):
    total = clients * requests_per_client(clients, sleep_ms, connections)
    return sleep_ms / 1000 * math.ceil(total / min(concurrency(clients), clients))


class Server:
    """fanout_server.py in a process of its own: its first line says its port, its last its CPU time."""

    def __init__(self, model, sleep_ms):
        self.process = subprocess.Popen([sys.executable, str(SERVER), "--model", model, "--port", "0",
                                         "--sleep-ms", str(sleep_ms)], stdout=subprocess.PIPE, text=True)
        line = self._line(START_S)
        m = re.fullmatch(r"listening on .*:(\d+)", line)
        if not m:
            self.kill()
            raise RuntimeError(f"fanout_server.py --model {model} said {line!r}, not 'listening on HOST:PORT'")
        self.port = int(m[1])

    def _line(self, limit):
        # A thread-free deadline: the server prints its lines at once (flushed).
        import selectors
        with selectors.DefaultSelector() as sel:
            sel.register(self.process.stdout, selectors.EVENT_READ)
            if not sel.select(limit):
                raise RuntimeError(f"fanout_server.py: no line within {limit} s")
        return self.process.stdout.readline().strip()

    def stop(self):
        """SIGTERM; its summary line as a dict."""
        self.process.send_signal(signal.SIGTERM)
        try:
            line = self._line(STOP_S)
            status = self.process.wait(STOP_S)
        finally:
            self.kill()
        if status != 0:
            raise RuntimeError(f"fanout_server.py ended with status {status} after {line!r}")
        return dict(pair.split("=", 1) for pair in line.split() if "=" in pair)

    def kill(self):
        """SIGTERM first, so that a ForkingTCPServer ends and reaps its children (a SIGKILL would leave
        them holding their connections); SIGKILL if it has not ended within STOP_S."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(STOP_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process.stdout.close()


def fan_out(client, port, clients, requests, sleep_ms):
    """One run of fanout-client: its summary line as a dict of numbers (exit 1 is a run with errors, still
    a report)."""
    cmd = [client, "--port", str(port), "--clients", str(clients), "--requests", str(requests),
           "--bytes", str(BYTES), "--timeout-ms", str(10_000 + sleep_ms), "--cap-s", "120"]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
    lines = result.stdout.strip().splitlines()
    if result.returncode not in (0, 1) or not lines:
        raise RuntimeError(f"fanout-client exit {result.returncode}: {result.stderr.strip()}")
    return {k: float(v) for k, v in (pair.split("=", 1) for pair in lines[-1].split())}


def measure_fanout(client, model, clients, sleep_ms, connections, min_time):
    """One repetition: (iterations, wall_s, cpu_s, counters), as conclab-bench's fanout rows."""
    requests = requests_per_client(clients, sleep_ms, connections)
    server = Server(model, sleep_ms)
    reports = []
    try:
        spent = 0.0
        while not reports or spent < min_time:
            reports.append(fan_out(client, server.port, clients, requests, sleep_ms))
            spent += reports[-1]["wall_s"]
        summary = server.stop()
    except BaseException:
        server.kill()
        raise
    n = len(reports)
    wall = sum(r["wall_s"] for r in reports)
    ok = sum(r["ok"] for r in reports)
    server_cpu = float(summary["cpu_s"])
    per_iteration = clients * requests
    counters = {
        "clients": clients, "connections": per_iteration, "sleep_ms": sleep_ms,
        "requests_per_s": ok / wall if wall > 0 else 0,
        **{k: sum(r[k] for r in reports) / n for k in ("p50_ms", "p90_ms", "p99_ms")},
        "max_ms": max(r["max_ms"] for r in reports),
        "errors": sum(r[k] for r in reports for k in ("refused", "reset", "timed_out", "short", "other")),
        "unfinished": sum(r["unfinished"] for r in reports),
        "server_cpu_s": server_cpu / n, "server_user_s": float(summary["cpu_user_s"]) / n,
        "server_sys_s": float(summary["cpu_sys_s"]) / n,
        "server_cpu_ms_per_1000": server_cpu / (n * per_iteration) * 1e6,
        "server_rss_kb": float(summary["maxrss_kb"]), "children_rss_kb": float(summary["children_maxrss_kb"]),
        "served": float(summary["served"]), "label": "per_worker=" + summary.get("per_worker", "-"),
    }
    return n, wall / n, server_cpu / n, counters


def fanout_case(text):
    m = re.fullmatch(r"(\d+)x(\d+)", text)
    if not m or not 1 <= int(m[1]) <= 15_000 or not 0 <= int(m[2]) <= 60_000:
        raise argparse.ArgumentTypeError(f"'{text}' is not CLIENTSxSLEEP_MS (1-15000 x 0-60000)")
    return int(m[1]), int(m[2])


def main():
    parser = OneLineParser(description=__doc__.splitlines()[0])
    parser.add_argument("--client", default=str(ROOT / "build/release/bin/fanout-client"),
                        help="the fanout-client program (default %(default)s)")
    parser.add_argument("--cases", default=CASES, type=lambda s: [fanout_case(c) for c in s.split(",")],
                        help="fan-out cases as CLIENTSxSLEEP_MS, comma-separated (default %(default)s)")
    parser.add_argument("--connections", type=int, default=CONNECTIONS,
                        help="connections of a sleep-free case in all (default %(default)s)")
    parser.add_argument("--max-ideal-s", type=float, default=5.0,
                        help="leave out rows whose ideal time exceeds this (default %(default)s)")
    args, pattern = parse_run_args(parser)
    if not os.access(args.client, os.X_OK):
        parser.error(f"--client: {args.client} is not an executable (build fanout-client)")

    rows = []

    def error_message(e):
        return "impossible: " + str(e) if isinstance(e, Impossible) else f"{type(e).__name__}: {e}"

    for name, (model, concurrency, impossible) in MODELS.items():
        for clients, sleep_ms in args.cases:
            row = f"fanout/{name}/clients:{clients}/sleep_ms:{sleep_ms}"
            ideal_s = ideal_seconds(concurrency, clients, sleep_ms, args.connections)
            if ideal_s > args.max_ideal_s or not pattern.search(row):
                continue

            def once():
                if why := impossible(clients):
                    raise Impossible(why)
                iterations, wall_s, cpu_s, counters = measure_fanout(args.client, model, clients, sleep_ms,
                                                                     args.connections, args.min_time)
                counters["ideal_s"] = ideal_s
                return iterations, wall_s, cpu_s, counters

            repetitions = args.long_repetitions if ideal_s >= LONG_ROW_S else args.repetitions
            run_row(rows, row, "ms", repetitions, once, error_message)
    return write_results(rows, args.out, "bench_fanout.py")


if __name__ == "__main__":
    sys.exit(main())
