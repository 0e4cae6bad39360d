#!/usr/bin/env python3
"""The fan-out server on CPython's socketserver (lab 13): the C++ fanout-server's peer.

--model tcp (socketserver.TCPServer: one connection at a time), threading
(ThreadingTCPServer: a thread per connection) or forking (ForkingTCPServer:
a child per connection, at most 40 at once, CPython's default). The same
protocol ("4000\\n" in, 4000 bytes of the pattern out, the client closes
first; a bad count is refused by closing), the same flags where they apply
(--sleep-ms is a blocking sleep in the handler: there is no event loop
here), and the same summary line, with per_worker `-` (no fixed pool).
CPU is resource.getrusage(RUSAGE_SELF) + RUSAGE_CHILDREN taken after the
server is closed and its children reaped, as the C++ server does.

Changes from a plain socketserver program, on purpose: the counters live in
shared memory (multiprocessing.Value) so that forked children count too; a
stop signal is passed on to the children and shuts down the threads'
connections, so that server_close() does not wait for an idle client.
"""
import multiprocessing
import os
import pathlib
import resource
import signal
import socket
import socketserver
import sys
import threading
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "pycommon"))
from labargs import bounded_int, net_parser, stop_on_signals  # noqa: E402

MAX_REQUEST_LINE = 16  # "1048576\n" and then some, as conclab/fanout.hpp
LARGEST_MAX_BYTES = 1 << 20
PATTERN = b"0123456789abcdef" * (LARGEST_MAX_BYTES // 16)
MODELS = {"tcp": socketserver.TCPServer, "threading": socketserver.ThreadingTCPServer,
          "forking": socketserver.ForkingTCPServer}


def parse_count(line, max_bytes):
    """The count of a request line (no newline), or None: a plain decimal in [1, max_bytes]."""
    line = line[:-1] if line.endswith(b"\r") else line
    if not line or len(line) + 1 > MAX_REQUEST_LINE or not line[:1].isdigit() or line[:1] == b"0" \
            or not line.isdigit():
        return None
    count = int(line)
    return count if count <= max_bytes else None


class FanoutHandler(socketserver.BaseRequestHandler):
    def handle(self):
        options = self.server.options
        conn = self.request
        self.server.track(conn, True)
        try:
            served = self.serve(conn, options)
        finally:
            self.server.track(conn, False)
        counter = self.server.served if served else self.server.refused
        with counter.get_lock():
            counter.value += 1
        if getattr(self, "stopped", False):
            raise KeyboardInterrupt

    def serve(self, conn, options):
        conn.settimeout(options.idle_ms / 1000)
        try:
            line = b""
            while b"\n" not in line:
                if len(line) >= MAX_REQUEST_LINE:
                    return False  # too long
                data = conn.recv(MAX_REQUEST_LINE - len(line))
                if not data:
                    return False  # closed before the request
                line += data
            count = parse_count(line.split(b"\n", 1)[0], options.max_bytes)
            if count is None:
                return False
            if options.sleep_ms:
                time.sleep(options.sleep_ms / 1000)
            conn.sendall(PATTERN[:count])
        except OSError:  # silent too long, reset, closed mid-reply
            return False
        try:  # the client closes first: read until it has
            while conn.recv(512):
                pass
        except OSError:
            pass
        except KeyboardInterrupt:  # served all the same: counted, then the stop goes on (handle())
            self.stopped = True
        return True


def make_server(model, address, options):
    class FanoutServer(MODELS[model]):
        allow_reuse_address = True
        request_queue_size = socket.SOMAXCONN  # not 5: a burst of clients is not refused

        def __init__(self, *args):
            super().__init__(*args)
            self.options = options
            self.served = multiprocessing.Value("q", 0)
            self.refused = multiprocessing.Value("q", 0)
            self.open_connections = set()
            self.lock = threading.Lock()

        def track(self, conn, opening):
            with self.lock:
                (self.open_connections.add if opening else self.open_connections.discard)(conn)

        def stop_workers(self):
            """A stop signal: end the threads' idle connections, tell the children."""
            with self.lock:
                for conn in self.open_connections:
                    try:
                        conn.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass
            for pid in getattr(self, "active_children", None) or ():
                try:
                    os.kill(pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass

    return FanoutServer(address, FanoutHandler)


def main():
    parser = net_parser("Lab 13: the fan-out server on CPython's socketserver.", port=0)
    parser.add_argument("--model", required=True, choices=sorted(MODELS), help="tcp, threading or forking")
    parser.add_argument("--sleep-ms", type=bounded_int(3_600_000, lower=0), default=0,
                        help="service time: sleep this long before each reply (default 0)")
    parser.add_argument("--max-bytes", type=bounded_int(LARGEST_MAX_BYTES), default=16384,
                        help="largest count answered; larger ones are refused (default 16384)")
    parser.add_argument("--idle-ms", type=bounded_int(3_600_000), default=10_000,
                        help="close a connection silent for this long (default 10000)")
    args = parser.parse_args()
    # As the C++ servers: as many descriptors as the hard limit allows (10,000 clients need them).
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    stop_on_signals()
    server = make_server(args.model, (args.host, args.port), args)
    host, port = server.server_address[:2]
    try:  # a stop signal right after the first line (a quick caller) ends it as well as a later one
        print(f"listening on [{host}]:{port}" if ":" in host else f"listening on {host}:{port}")
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # the children get theirs from stop_workers()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    server.stop_workers()
    server.server_close()  # joins the threads, reaps the children
    me = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    user, system = me.ru_utime + children.ru_utime, me.ru_stime + children.ru_stime
    print(f"model={args.model} workers=0 served={server.served.value} refused={server.refused.value} "
          f"cpu_user_s={user:.3f} cpu_sys_s={system:.3f} cpu_s={user + system:.3f} maxrss_kb={me.ru_maxrss} "
          f"children_maxrss_kb={children.ru_maxrss} per_worker=-")


if __name__ == "__main__":
    main()
