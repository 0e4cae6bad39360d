#!/usr/bin/env python3
"""Lab 13's server checks (tests/net/lab13_server.cmake): fanout-server's models and the Python peer.

    lab13_server_check.py --bin-dir DIR load MODEL    100 concurrent clients, each a different count, get exactly
                                                      their bytes; the summary's served is 100, per_worker sums to
                                                      it; SIGTERM with a silent client connected: exit 0, no child
                                                      left, no descriptor leaked
    lab13_server_check.py --bin-dir DIR faults MODEL  a silent client, a non-number, an over-limit count, a zero,
                                                      a line too long, a close mid-reply, resets: the server serves
                                                      the next client each time, and leaks no descriptor
    lab13_server_check.py --bin-dir DIR kill MODEL    prefork: a child killed with SIGKILL is replaced, the pool
                                                      carries on, the killed child's count is kept
    lab13_server_check.py --bin-dir DIR sleep MODEL   --sleep-ms 200, 20 concurrent clients: ~0.2 s for the
                                                      concurrent models and the event loops (timers), ~4 s for the
                                                      serial ones and for an event loop with --blocking-sleep
    lab13_server_check.py --bin-dir DIR emfile MODEL  out of descriptors (ulimit -n 16, silent clients): the server
                                                      says so once, does not spin (CPU), and serves again once the
                                                      silent clients are closed (--idle-ms)
    lab13_server_check.py --bin-dir DIR usage         a bad --model: exit 2 naming the models

MODEL: a fanout-server model, or py-tcp, py-threading, py-forking for python/fanout_server.py.
"""
import argparse
import os
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
import netlib  # noqa: E402
from netlib import check, fail  # noqa: E402

LAB = TESTS.parent / "labs" / "13-server-designs"
WAIT_S = 10
PATTERN = b"0123456789abcdef" * 1024
POOLS = {"prefork-accept", "prefork-flock", "prefork-mutex", "prefork-fdpass", "prethread-mutex",
         "prethread-main-accept"}
PREFORK = {m for m in POOLS if m.startswith("prefork")}
LOOPS = {"select", "poll", "epoll", "epoll-threads"}
SERIAL = {"iterative", "py-tcp"}  # floor is one thread too, but never waits on one client
FORKING = {"fork-per-client", "socketserver-forking", "py-forking"} | PREFORK
SUMMARY = re.compile(r"^model=(\S+) workers=(\d+) served=(\d+) refused=(\d+) cpu_user_s=([\d.]+) cpu_sys_s=([\d.]+) "
                     r"cpu_s=([\d.]+) maxrss_kb=(\d+) children_maxrss_kb=(\d+) per_worker=(-|\d+(?:,\d+)*)$")


def command(bin_dir, model, *extra):
    if model.startswith("py-"):
        return [sys.executable, LAB / "python" / "fanout_server.py", "--model", model[3:], "--port", "0", *extra]
    return [bin_dir / "fanout-server", "--model", model, "--port", "0", *extra]


def children(pid):
    """The pids whose parent is `pid` (from /proc)."""
    found = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = open(f"/proc/{entry}/stat").read()
            except OSError:
                continue
            if int(stat[stat.rindex(")") + 2:].split()[1]) == pid:
                found.add(int(entry))
    return found


def ask(port, count, timeout=WAIT_S):
    """One request; exactly `count` bytes read (fewer if the server closes), then close. None on an error."""
    try:
        with netlib.connect(port, timeout=timeout) as s:
            s.sendall(f"{count}\n".encode())
            data = b""
            while len(data) < count:
                chunk = s.recv(min(65536, count - len(data)))
                if not chunk:
                    break
                data += chunk
            return data
    except OSError as e:
        return e


def fan_out(port, counts):
    """All the requests at once (a thread each, started together); the answers in order."""
    answers = [None] * len(counts)
    start = threading.Barrier(len(counts))

    def one(i):
        try:
            start.wait(WAIT_S)
        except threading.BrokenBarrierError:
            pass
        answers[i] = ask(port, counts[i])

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(counts))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return answers


def check_answers(model, counts, answers, what):
    bad = [(c, a if isinstance(a, Exception) else len(a)) for c, a in zip(counts, answers)
           if not isinstance(a, bytes) or a != PATTERN[:c]]
    return check(not bad, f"{model}: {what}: {len(bad)} of {len(counts)} clients without their bytes, "
                 f"e.g. (count, got) {bad[:5]}")


def summary(server, model):
    line = server.output()[-1] if server.output() else ""
    print(line)
    m = SUMMARY.match(line)
    if not check(m, f"{model}: summary line {line!r}"):
        return None
    return {"model": m.group(1), "workers": int(m.group(2)), "served": int(m.group(3)), "refused": int(m.group(4)),
            "per_worker": None if m.group(10) == "-" else [int(x) for x in m.group(10).split(",")]}


def stop_and_check(server, model, before_fds, silent=None):
    """SIGTERM (with a silent client connected, if given): exit 0, no child left, no descriptor leaked."""
    if before_fds is not None:
        netlib.settle(lambda: len(server.fds()) == len(before_fds), timeout=WAIT_S)
        after = server.fds()
        check(set(after) == set(before_fds), f"{model}: descriptors after the clients: {after}, before: {before_fds}")
    kids = children(server.proc.pid)
    server.stop()
    if silent:
        silent.close()
    left = {pid for pid in kids if os.path.exists(f"/proc/{pid}")}
    netlib.settle(lambda: not {pid for pid in left if os.path.exists(f"/proc/{pid}")}, timeout=5)
    left = {pid for pid in left if os.path.exists(f"/proc/{pid}")}
    check(not left, f"{model}: children left after the server's exit: {sorted(left)}")
    return summary(server, model)


def start(bin_dir, model, *extra):
    """The server, its pools 8 workers and epoll-threads 3 loops (not the core count: --loops is heeded)."""
    workers = ["--workers", "8"] if model in POOLS else ["--loops", "3"] if model == "epoll-threads" else []
    return netlib.Server(command(bin_dir, model, *workers, *extra))


# --- the tests --------------------------------------------------------------------------------


def quiet_fds(server):
    """The server's descriptors once they stay the same for 50 ms (a connection just served may
    still be open on its side: the client closes first)."""
    deadline = time.monotonic() + WAIT_S
    last = server.fds()
    while time.monotonic() < deadline:
        time.sleep(0.05)
        now = server.fds()
        if now == last:
            return now
        last = now
    return last


def test_load(bin_dir, model, clients=100):
    with start(bin_dir, model) as server:
        check(ask(server.port, 10) == PATTERN[:10], f"{model}: the warm-up request")
        before = quiet_fds(server)
        counts = [1 + 150 * i for i in range(clients)]  # all different, 1 .. 14851
        answers = fan_out(server.port, counts)
        check_answers(model, counts, answers, f"{clients} concurrent clients")
        netlib.settle(lambda: server.fds() == before, timeout=WAIT_S)
        after = server.fds()
        check(after == before, f"{model}: descriptors after the clients: {after}, before: {before}")
        if model in FORKING - PREFORK:  # a child per connection: each ends after its client
            check(netlib.settle(lambda: not children(server.proc.pid), timeout=WAIT_S),
                  f"{model}: children still running after every client left: {children(server.proc.pid)}")
        # When the stop comes, a client connected and silent, and one that has its reply but has not
        # closed yet (the server waits for that close): their workers end too; the second counts as served.
        silent = netlib.connect(server.port)
        lingering = netlib.connect(server.port)
        lingering.sendall(b"300\n")
        got = b""
        while len(got) < 300:
            chunk = lingering.recv(300 - len(got))
            if not chunk:
                break
            got += chunk
        check(got == PATTERN[:300], f"{model}: the lingering client's reply: {len(got)} bytes")
        s = stop_and_check(server, model, None, silent)
        lingering.close()
        check(server.errors() == [], f"{model}: stderr {server.errors()}")
        if not s:
            return
        check(s["served"] == clients + 2, f"{model}: served={s['served']}, expected {clients + 2} "
              "(the warm-up, the clients, the lingering one)")
        check(s["refused"] <= 1, f"{model}: refused={s['refused']}, expected at most 1 (the silent client)")
        if model in POOLS or model == "epoll-threads":
            want = 3 if model == "epoll-threads" else 8
            check(s["workers"] == want and (s["per_worker"] is None or len(s["per_worker"]) == want),
                  f"{model}: workers={s['workers']} per_worker={s['per_worker']}, expected {want}")
        if model in POOLS or model in LOOPS:
            check(s["per_worker"] is not None and sum(s["per_worker"]) == s["served"],
                  f"{model}: per_worker {s['per_worker']} does not sum to served={s['served']}")
        else:
            check(s["per_worker"] is None, f"{model}: per_worker {s['per_worker']}, expected -")


def raw(port):
    return netlib.connect(port, timeout=WAIT_S)


def test_faults(bin_dir, model):
    # The largest --max-bytes: a reply of 1 MiB does not fit in the loopback buffers, so a client
    # that closes after 100 bytes leaves the server in the middle of its send.
    with start(bin_dir, model, "--idle-ms", "1000", "--max-bytes", str(1 << 20)) as server:
        check(ask(server.port, 100) == PATTERN[:100], f"{model}: the first request")
        before = quiet_fds(server)
        good = 1

        def still_serving(what, count=1000):
            nonlocal good
            got = ask(server.port, count)
            if check(got == PATTERN[:count], f"{model}: after {what}: got {got if isinstance(got, Exception) else len(got)}"):
                good += 1

        silent = raw(server.port)
        if model not in SERIAL:  # a concurrent server serves the others meanwhile
            start_t = time.monotonic()
            still_serving("a silent client (while it is connected)")
            check(time.monotonic() - start_t < 0.9, f"{model}: a silent client held up the next one")
        # the silent client is closed by the server after --idle-ms
        silent.settimeout(5)
        try:
            closed = silent.recv(10) == b""
        except TimeoutError:
            closed = False
        except OSError:  # reset
            closed = True
        check(closed, f"{model}: the silent client was not closed after --idle-ms")
        silent.close()
        still_serving("a silent client")
        for request in (b"abc\n", b"%d\n" % ((1 << 20) + 1), b"0\n", b"-5\n", b"1" * 40, b"\n"):
            with raw(server.port) as s:
                s.sendall(request)
                try:
                    got = netlib.recv_until_closed(s)
                except OSError:
                    got = b""
                check(got == b"", f"{model}: {request!r} answered {got[:20]!r}, expected a close")
            still_serving(f"the request {request!r}")
        # Closes after 100 bytes of 1 MiB (a small receive window, so that the server's send is still
        # going): the unread bytes make the close an RST, which the server's send then meets.
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.settimeout(WAIT_S)
        s.connect(("127.0.0.1", server.port))
        s.sendall(b"%d\n" % (1 << 20))
        s.recv(100)
        time.sleep(0.05)  # the server fills the window and waits to send more (a short wait, not a sync)
        s.close()
        still_serving("a close mid-reply")
        s = raw(server.port)
        netlib.reset(s)
        still_serving("a reset before the request")
        s = raw(server.port)
        s.sendall(b"9000\n")
        netlib.reset(s)
        still_serving("a reset after the request")
        s = raw(server.port)
        s.sendall(b"12")  # half a line, then gone
        s.close()
        still_serving("half a request")
        netlib.settle(lambda: server.fds() == before, timeout=WAIT_S)
        check(server.fds() == before, f"{model}: descriptors after the faults: {server.fds()}, before: {before}")
        check(server.alive(), f"{model}: died during the faults: {server.errors()}")
        s = stop_and_check(server, model, None)
        if s:
            check(s["served"] >= good, f"{model}: served={s['served']}, expected at least {good}")
            check(s["refused"] >= 8, f"{model}: refused={s['refused']}, expected at least the 8 bad requests")


def test_kill(bin_dir, model):
    with start(bin_dir, model) as server:
        counts = [100 + i for i in range(40)]
        check_answers(model, counts, fan_out(server.port, counts), "before the kill")
        # The children are forked after the first line; a slow fork (TSan's, on a busy machine) may leave
        # the last ones still starting while the first ones serve the 40 requests.
        netlib.settle(lambda: len(children(server.proc.pid)) == 8, timeout=WAIT_S)
        kids = children(server.proc.pid)
        check(len(kids) == 8, f"{model}: {len(kids)} children, expected 8; stderr: {server.errors()}")
        victim = min(kids)
        os.kill(victim, signal.SIGKILL)
        replaced = netlib.settle(lambda: len(children(server.proc.pid) - {victim}) == 8, timeout=WAIT_S)
        check(replaced, f"{model}: the killed child was not replaced: {children(server.proc.pid)}")
        check(netlib.settle(lambda: any("replaced" in line for line in server.errors()), timeout=WAIT_S),
              f"{model}: no 'replaced' on stderr: {server.errors()}")
        check_answers(model, counts, fan_out(server.port, counts), "after the kill")
        s = stop_and_check(server, model, None)
        if s:
            check(s["served"] == 80, f"{model}: served={s['served']}, expected 80 (the killed child's count kept)")
            check(sum(s["per_worker"] or []) == 80, f"{model}: per_worker {s['per_worker']}")


def test_sleep(bin_dir, model):
    blocking = model.endswith("+blocking")
    model = model.removesuffix("+blocking")
    serial = model in SERIAL or blocking
    extra = ["--sleep-ms", "200"] + (["--blocking-sleep"] if blocking else [])
    if model in POOLS:
        extra += ["--workers", "20"]
    cmd = command(bin_dir, model, *extra)
    with netlib.Server(cmd) as server:
        counts = [1000 + i for i in range(20)]
        t0 = time.monotonic()
        answers = fan_out(server.port, counts)
        wall = time.monotonic() - t0
        check_answers(model, counts, answers, "20 clients, sleep 200 ms")
        name = model + (" --blocking-sleep" if blocking else "")
        print(f"{name}: 20 clients of 200 ms in {wall:.2f} s")
        s = stop_and_check(server, model, None)
        if serial:  # one after the other: 20 x 200 ms (epoll-threads: shared by its loops)
            loops = s["workers"] if s and model == "epoll-threads" else 1
            expected = 20 * 0.2 / loops
            check(0.95 * expected <= wall <= 3 * expected, f"{name}: 20 clients of 200 ms took {wall:.2f} s, "
                  f"expected about {expected:.1f} s (one after the other, {loops} at a time)")
        else:  # all at once
            check(0.2 <= wall <= 1.2, f"{name}: 20 clients of 200 ms took {wall:.2f} s, expected about 0.2 s")


def cpu_ticks(pid):
    stat = open(f"/proc/{pid}/stat").read()
    fields = stat[stat.rindex(")") + 2:].split()
    return int(fields[11]) + int(fields[12])  # utime + stime, in clock ticks


def test_emfile(bin_dir, model):
    cmd = command(bin_dir, model, "--idle-ms", "1500", *(["--workers", "8"] if model in POOLS else []))
    limited = ["bash", "-c", 'ulimit -n 16 && exec "$@"', "fanout-server"] + [str(c) for c in cmd]
    with netlib.Server(limited) as server:
        silent = [raw(server.port) for _ in range(16)]  # more than the server can hold
        said = netlib.settle(lambda: any("not accepting" in line for line in server.errors()), timeout=WAIT_S)
        check(said, f"{model}: no 'not accepting' on stderr out of descriptors: {server.errors()}")
        ticks = os.sysconf("SC_CLK_TCK")
        t0, c0 = time.monotonic(), cpu_ticks(server.proc.pid)
        time.sleep(0.5)  # measuring CPU over a while, not waiting for something
        used = (cpu_ticks(server.proc.pid) - c0) / ticks
        check(used < 0.15, f"{model}: {used:.2f} s of CPU in {time.monotonic() - t0:.2f} s out of descriptors: a spin")
        check(len([line for line in server.errors() if "not accepting" in line]) <= 3,
              f"{model}: said it too often: {server.errors()}")
        # The silent clients are closed after --idle-ms; the queued ones then too; then a client is served.
        got = ask(server.port, 500, timeout=WAIT_S)
        check(got == PATTERN[:500], f"{model}: not serving after running out of descriptors: {got!r}"[:300])
        for s in silent:
            s.close()
        check(server.alive(), f"{model}: died out of descriptors: {server.errors()}")
        stop_and_check(server, model, None)


def test_fdlimit(bin_dir, model):
    """Started with a soft descriptor limit of 64, the server raises it to the hard limit
    (and the C++ server grows its descriptor table to it)."""
    import resource
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    if hard != resource.RLIM_INFINITY and hard <= 64:
        print(f"skipped: the hard descriptor limit is {hard}")
        return
    limited = ["bash", "-c", 'ulimit -Sn 64 && exec "$@"', "fanout-server"] + [str(c) for c in command(bin_dir, model)]
    with netlib.Server(limited) as server:
        limits = open(f"/proc/{server.proc.pid}/limits").read()
        soft = re.search(r"^Max open files\s+(\S+)", limits, re.M)[1]
        want = "unlimited" if hard == resource.RLIM_INFINITY else str(hard)
        check(soft == want, f"{model}: soft descriptor limit {soft} after starting at 64, expected the hard {want}")
        if not model.startswith("py-"):
            # ... and grows its descriptor table to it (64 Ki at most) before
            # any thread starts: grown under a burst, each doubling would stall
            # accept() for an RCU grace period (fd.hpp, reserve_fd_table).
            status = open(f"/proc/{server.proc.pid}/status").read()
            size = int(re.search(r"^FDSize:\s+(\d+)", status, re.M)[1])
            least = min(65536, 1 << 30 if hard == resource.RLIM_INFINITY else hard)
            check(size >= least, f"{model}: a descriptor table of {size}, expected at least {least}")
        stop_and_check(server, model, None)


def test_usage(bin_dir):
    r = subprocess.run([bin_dir / "fanout-server", "--model", "nonesuch"], capture_output=True, text=True, timeout=WAIT_S)
    check(r.returncode == 2, f"--model nonesuch: exit {r.returncode}, expected 2")
    check(r.stderr.count("\n") == 1 and "prefork-fdpass" in r.stderr and "nonesuch" in r.stderr,
          f"--model nonesuch: stderr {r.stderr!r}, expected one line naming the models")
    r = subprocess.run([bin_dir / "fanout-server", "--help"], capture_output=True, text=True, timeout=WAIT_S)
    for mapping in ("serial -> iterative", "threaded -> thread-per-client", "thread-locked -> prethread-mutex",
                    "forked -> fork-per-client", "process-pool -> the prefork-*", "shared-memory -> prefork-mutex"):
        check(mapping in r.stdout, f"--help does not say {mapping!r}")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--bin-dir", type=pathlib.Path, required=True)
    parser.add_argument("test", choices=["load", "faults", "kill", "sleep", "emfile", "fdlimit", "usage"])
    parser.add_argument("model", nargs="?")
    args = parser.parse_args()
    if args.test == "usage":
        test_usage(args.bin_dir)
    else:
        globals()[f"test_{args.test}"](args.bin_dir, args.model)
    return netlib.finish()


if __name__ == "__main__":
    sys.exit(main())
