#!/usr/bin/env python3
"""CPython peers of conclab-bench's selectors/ and socketserver/ rows: the stdlib selectors and socketserver.

    bench_mux.py --out python-mux.json
    bench_mux.py --min-time 0.01 --shutdown-iterations 2     (a smoke run)

python/selectors/<backend>/fds:N  one wait with 1 ready descriptor among N idle registered ones,
                                  N = 10, 100, 1000, 10000
python/socketserver/shutdown      shutdown() of a socketserver.TCPServer whose serve_forever() runs
                                  in a thread, one request served first (the mean of --shutdown-iterations)

The back ends are selectors.SelectSelector, PollSelector and EpollSelector.
The selectors module has no edge-triggered selector: epoll-edge is an
EpollSelector that registers each descriptor with EPOLLET as well
(EdgeEpollSelector below), so that its select() is the module's own code.

As in conclab-bench (bench/mux.cpp says why): one iteration writes the ready
eventfd, waits, reads it back; the idle descriptors are eventfds nobody
writes; select() cannot watch a descriptor >= FD_SETSIZE (1024): CPython's
select() raises ValueError, and the row is written as impossible (its
error_message starts with "impossible: "), which is not a failure.

The timing loop is bench_workers.py's measure(); the JSON is Google
Benchmark's schema, as bench_workers.py writes it.
"""
import argparse
import contextlib
import os
import resource
import select
import selectors
import socket
import socketserver
import sys
import threading
import time

from bench_net import no_descriptor_left, one_cpu, open_descriptors, recv_exact
from bench_workers import OneLineParser, measure, parse_run_args, run_row, write_results

FD_COUNTS = (10, 100, 1000, 10000)
WAIT_LIMIT_S = 10  # the ready descriptor is there at once: a limit, not a hang
REQUEST, RESPONSE = b"ping", b"pong"
SHUTDOWNS = 16
MAX_SHUTDOWNS = 1000
POLL_INTERVAL_S = 0.5  # serve_forever()'s default poll_interval
IMPOSSIBLE = "impossible: "


class Impossible(Exception):
    """What the row measures cannot be done (select() and a descriptor >= FD_SETSIZE)."""


class EdgeEpollSelector(selectors.EpollSelector):
    """EpollSelector with every descriptor edge-triggered (EPOLLET): reported once when it becomes ready."""
    def register(self, fileobj, events, data=None):
        key = super().register(fileobj, events, data)
        try:
            self._selector.modify(key.fd, select.EPOLLIN | select.EPOLLET)
        except BaseException:
            super().unregister(fileobj)
            raise
        return key


SELECTORS = {"select": selectors.SelectSelector, "poll": selectors.PollSelector,
             "epoll": selectors.EpollSelector, "epoll-edge": EdgeEpollSelector}


@contextlib.contextmanager
def descriptor_room(more):
    """Lets this process open `more` descriptors beyond those it has (the soft RLIMIT_NOFILE
    raised up to the hard one while it lasts), as conclab-bench's DescriptorRoom."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    needed = open_descriptors() + more
    if needed <= soft:
        yield
        return
    if hard != resource.RLIM_INFINITY and needed > hard:
        raise RuntimeError(f"needs {needed} descriptors; the hard RLIMIT_NOFILE is {hard} (ulimit -Hn)")
    resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def wait_cost(backend, idle_count):
    """prepare(stack) of selectors/<backend>/fds:<idle_count>: the eventfds and the selector, and run()."""
    def prepare(stack):
        stack.enter_context(descriptor_room(idle_count + 8))  # + the ready one, epoll's own, a few spare
        fds = []
        for _ in range(idle_count + 1):  # the idle ones, then the ready one
            fds.append(os.eventfd(0, os.EFD_CLOEXEC | os.EFD_NONBLOCK))
            stack.callback(os.close, fds[-1])
        ready = fds[-1]
        sel = stack.enter_context(SELECTORS[backend]())
        for fd in fds:
            sel.register(fd, selectors.EVENT_READ)
        if backend == "select":
            try:
                sel.select(0)
            except ValueError as e:  # "filedescriptor out of range in select()"
                raise Impossible(f"select() cannot watch descriptor {ready} >= FD_SETSIZE (1024): "
                                 f"ValueError: {e}") from None

        def run():
            os.eventfd_write(ready, 1)
            got = sel.select(WAIT_LIMIT_S)
            if len(got) != 1 or got[0][0].fd != ready:
                raise RuntimeError(f"select() reported {len(got)} descriptors, expected the ready one alone")
            os.eventfd_read(ready)
        return run
    return prepare


class Answer(socketserver.BaseRequestHandler):
    def handle(self):
        if recv_exact(self.request, len(REQUEST)) == REQUEST:
            self.request.sendall(RESPONSE)


def phase_delay(i, n):
    """Shutdown i of n comes (i + 0.5) / n of the poll interval after the request was served
    (bench/mux.cpp's phase_delay): spread evenly, the mean is serve_forever()'s mean wait."""
    return POLL_INTERVAL_S * (i + 0.5) / n


def shutdown_once(delay):
    """Seconds that shutdown() took: serve_forever() in a thread, one request, `delay`, shutdown()."""
    with socketserver.TCPServer(("127.0.0.1", 0), Answer) as server:
        serving = threading.Thread(target=server.serve_forever)
        serving.start()
        try:
            with socket.create_connection(server.server_address, timeout=WAIT_LIMIT_S) as client:
                client.sendall(REQUEST)
                if recv_exact(client, len(RESPONSE)) != RESPONSE:
                    raise RuntimeError("shutdown: a wrong response")
            time.sleep(delay)
            start = time.perf_counter()
        finally:
            server.shutdown()  # serve_forever() runs: the request was served (before it, shutdown() hangs)
        took = time.perf_counter() - start
        serving.join()
    return took


def shutdown_latency(shutdowns):
    """(iterations, mean seconds, cpu seconds per shutdown) of socketserver/shutdown."""
    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    took = [shutdown_once(phase_delay(i, shutdowns)) for i in range(shutdowns)]
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (cpu1.ru_utime + cpu1.ru_stime - cpu0.ru_utime - cpu0.ru_stime) / shutdowns
    return shutdowns, sum(took) / shutdowns, cpu


def measure_row(prepare, min_time):
    """(iterations, wall_s, cpu_s) of one selectors row, on one CPU; its descriptors are closed
    on return, and a descriptor left open fails it."""
    with no_descriptor_left(), one_cpu(), contextlib.ExitStack() as stack:
        return measure(prepare(stack), min_time)


def shutdown_count(text):
    if not text.isdigit() or not 1 <= int(text) <= MAX_SHUTDOWNS:
        raise argparse.ArgumentTypeError(f"'{text}' is not a number from 1 to {MAX_SHUTDOWNS}")
    return int(text)


def main():
    parser = OneLineParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shutdown-iterations", type=shutdown_count, default=SHUTDOWNS, metavar="N",
                        help=f"shutdowns measured by socketserver/shutdown, 1 to {MAX_SHUTDOWNS}; each waits up "
                             f"to {POLL_INTERVAL_S} s first (default %(default)s)")
    args, pattern = parse_run_args(parser)

    rows = []

    def error_message(e):
        return IMPOSSIBLE + str(e) if isinstance(e, Impossible) else f"{type(e).__name__}: {e}"

    for backend in SELECTORS:
        for n in FD_COUNTS:
            name = f"selectors/{backend}/fds:{n}"
            if pattern.search(name):
                run_row(rows, name, "us", args.repetitions,
                        lambda: (*measure_row(wait_cost(backend, n), args.min_time), {"fds": n}), error_message)
    if pattern.search("socketserver/shutdown"):
        # Each repetition waits up to POLL_INTERVAL_S per shutdown: a long row.
        with one_cpu():
            run_row(rows, "socketserver/shutdown", "us", args.long_repetitions,
                    lambda: (*shutdown_latency(args.shutdown_iterations), {}), error_message)

    return write_results(rows, args.out, "bench_mux.py")


if __name__ == "__main__":
    sys.exit(main())
