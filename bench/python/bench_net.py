#!/usr/bin/env python3
"""CPython peers of conclab-bench's net/ rows: loopback networking with the stdlib socket module.

    bench_net.py --out python-net.json
    bench_net.py --net-bytes 65536 --min-time 0.01      (a smoke run)

python/net/tcp-rtt      one byte there and back on an open TCP connection (TCP_NODELAY)
python/net/tcp-connect  connect, a 4-byte request, a 4-byte response, close
python/net/udp-rtt      one 1-byte datagram each way (the client with a timeout, as a UDP client needs)
python/net/tcp-stream   sendall of --net-bytes (64 MiB), the peer reading it into a buffer as large
python/net/memcpy       one copy of the same bytes into a bytearray (a memcpy): the ceiling

The other end is a threading.Thread of this process, as in conclab-bench, and
both run on one CPU (OneCpu in bench/bench.hpp says why).
The timing loop is bench_workers.py's measure(); the JSON is Google Benchmark's
schema, as bench_workers.py writes it (a failed row: "error_occurred" and its
"error_message"; the other rows still run, and the exit status is 1).
"""
import argparse
import contextlib
import os
import random
import socket
import sys
import threading

from bench_workers import OneLineParser, measure, parse_run_args, run_row, write_results

STREAM_BYTES = 64 << 20  # the default of conclab-bench's CONCLAB_BENCH_NET_BYTES
MAX_STREAM_BYTES = 1 << 30
REQUEST, RESPONSE = b"ping", b"pong"
LOOPBACK = "127.0.0.1"
DATAGRAM_TIMEOUT_S = 10


class Peer:
    """The thread at the other end, started at once, running target(sock, *args).

    It owns sock: the socket is closed when the target ends, however it ends,
    so that the timing loop sees the connection closed instead of waiting for
    ever (as conclab::Thread releases its arguments). stop() is measure()'s
    clean_up: stop(failed) wakes the peer (closes or sends what it waits on), joins it,
    and raises the peer's exception if it had one: it is the row's error even
    when the timing loop failed too (the loop only saw the connection reset).
    """
    def __init__(self, target, sock, wake, *args):
        self.wake, self.error = wake, None

        def body():
            try:
                with sock:
                    target(sock, *args)
            except BaseException as e:
                self.error = e
        self.thread = threading.Thread(target=body)
        self.thread.start()

    def stop(self, failed):
        try:
            self.wake()
        except OSError:
            if not failed:
                raise
        finally:
            self.thread.join()
            if self.error:
                raise self.error


def recv_exact(sock, n):
    data = b""
    while len(data) < n:
        more = sock.recv(n - len(data))
        if not more:
            raise ConnectionError(f"the peer closed the connection after {len(data)} of {n} bytes")
        data += more
    return data


def connect_loopback(stack):
    """A TCP connection over loopback: both ends, TCP_NODELAY on each."""
    with socket.create_server((LOOPBACK, 0)) as listener:
        client = stack.enter_context(socket.create_connection(listener.getsockname()))
        server = stack.enter_context(listener.accept()[0])
    for s in (client, server):
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return client, server


def echo_stream(conn):
    """The echo of tcp-rtt: sends back what arrives until the client shuts down."""
    while data := conn.recv(64):
        conn.sendall(data)


def tcp_rtt(stack, nbytes):
    client, server = connect_loopback(stack)

    def run():
        client.sendall(b"x")
        if len(client.recv(1)) != 1:
            raise ConnectionError("tcp-rtt: the echo closed the connection")
    return run, Peer(echo_stream, server, lambda: client.shutdown(socket.SHUT_WR))


def serve_requests(listener):
    """The listener of tcp-connect: answers each connection's request and closes it;
    a connection closed without a request ends the loop."""
    while True:
        conn, _ = listener.accept()
        with conn:
            request = conn.recv(len(REQUEST))
            if not request:
                return
            request += recv_exact(conn, len(REQUEST) - len(request))
            conn.sendall(RESPONSE)


def tcp_connect(stack, nbytes):
    listener = stack.enter_context(socket.create_server((LOOPBACK, 0)))
    listener.settimeout(30)  # should the wake-up connection fail: no hang
    address = listener.getsockname()

    def connect():
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.connect(address)
        return s

    def run():
        with connect() as s:
            s.sendall(REQUEST)
            if recv_exact(s, len(RESPONSE)) != RESPONSE:
                raise RuntimeError("tcp-connect: a wrong response")
    return run, Peer(serve_requests, listener, lambda: connect().close())


def echo_datagrams(sock):
    """The echo of udp-rtt: sends each datagram back; an empty one ends the loop."""
    while True:
        data, peer = sock.recvfrom(64)
        if not data:
            return
        sock.sendto(data, peer)


def udp_rtt(stack, nbytes):
    server = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
    server.bind((LOOPBACK, 0))
    address = server.getsockname()
    client = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
    client.settimeout(DATAGRAM_TIMEOUT_S)  # a datagram may be lost: a row that fails, not one that hangs

    def run():
        client.sendto(b"x", address)
        if len(client.recvfrom(64)[0]) != 1:
            raise RuntimeError("udp-rtt: a wrong reply")
    return run, Peer(echo_datagrams, server, lambda: client.sendto(b"", address))


def read_and_ack(conn, into):
    """The reader of tcp-stream: fills `into` from the connection, answers one byte
    when it is full, and again, until the client shuts down."""
    view = memoryview(into)
    while True:
        got = 0
        while got < len(view):
            n = conn.recv_into(view[got:])
            if n == 0:
                return
            got += n
        conn.sendall(b"k")


def buffers(nbytes):
    """The bytes to move (random, so that comparing a copy means something) and a zeroed bytearray."""
    return random.Random(7).randbytes(nbytes), bytearray(nbytes)


def tcp_stream(stack, nbytes):
    """One iteration: sendall of the whole buffer, then the reader's one-byte
    acknowledgement (sendall returns when the kernel has the last bytes)."""
    data, received = buffers(nbytes)
    client, server = connect_loopback(stack)

    def run():
        client.sendall(data)
        if len(client.recv(1)) != 1:
            raise ConnectionError("tcp-stream: the reader closed the connection")

    def check():
        if received != data:
            raise RuntimeError("tcp-stream: the bytes received differ from those sent")
    return run, Peer(read_and_ack, server, lambda: client.shutdown(socket.SHUT_WR), received), check


def copy_memory(stack, nbytes):
    """One memcpy, through a memoryview: `copy[:] = data` would first copy the bytes into a new bytearray."""
    data, copy = buffers(nbytes)
    view = memoryview(copy)

    def run():
        view[:] = data

    def check():
        if copy != data:
            raise RuntimeError("memcpy: the copy differs")
    return run, None, check


# name -> (prepare(stack, nbytes) -> (run, peer or None[, check]), unit, moves bytes)
ROWS = {
    "net/tcp-rtt": (tcp_rtt, "us", False),
    "net/tcp-connect": (tcp_connect, "us", False),
    "net/udp-rtt": (udp_rtt, "us", False),
    "net/tcp-stream": (tcp_stream, "ms", True),
    "net/memcpy": (copy_memory, "ms", True),
}


def open_descriptors():
    return len(os.listdir("/proc/self/fd"))


@contextlib.contextmanager
def no_descriptor_left():
    """Fails the row, once its block has ended, if it left a descriptor open (the rows share one process)."""
    before = open_descriptors()
    yield
    after = open_descriptors()
    if after != before:
        raise RuntimeError(f"{after} descriptors open after the row, {before} before")


@contextlib.contextmanager
def one_cpu():
    """Pins this thread, and the threads it starts meanwhile, to one CPU (the first it may use):
    the same as conclab-bench's OneCpu, and why."""
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(before)})
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


def measure_row(prepare, nbytes, min_time):
    """(iterations, wall_s, cpu_s) of one row, on one CPU; every socket and thread of it is
    gone on return, and a descriptor left open fails it."""
    with no_descriptor_left(), one_cpu(), contextlib.ExitStack() as stack:
        run, peer, *check = prepare(stack, nbytes)
        result = measure(run, min_time, peer.stop if peer else None)
        for c in check:
            c()
    return result


def byte_count(text):
    if not text.isdigit() or not 1 <= int(text) <= MAX_STREAM_BYTES:
        raise argparse.ArgumentTypeError(f"'{text}' is not a number of bytes from 1 to {MAX_STREAM_BYTES}")
    return int(text)


def main():
    parser = OneLineParser(description=__doc__.splitlines()[0])
    parser.add_argument("--net-bytes", type=byte_count, default=STREAM_BYTES, metavar="N",
                        help=f"bytes of tcp-stream and memcpy, 1 to {MAX_STREAM_BYTES} (default %(default)s)")
    args, pattern = parse_run_args(parser)

    rows = []
    for name, (prepare, unit, moves_bytes) in ROWS.items():
        if not pattern.search(name):
            continue

        def once():
            iterations, wall_s, cpu_s = measure_row(prepare, args.net_bytes, args.min_time)
            counters = {"bytes": args.net_bytes, "bytes_per_second": args.net_bytes / wall_s} if moves_bytes else {}
            return iterations, wall_s, cpu_s, counters

        run_row(rows, name, unit, args.repetitions, once)

    return write_results(rows, args.out, "bench_net.py", net_bytes=args.net_bytes)


if __name__ == "__main__":
    sys.exit(main())
