#!/usr/bin/env python3
"""How long socketserver's shutdown() takes, in Python 3 (lab 12).

Each round: a TCPServer on any free port, serve_forever() in a thread, one
request served, then shutdown() from the main thread, timed. CPython's
serve_forever() waits in select() with a 0.5 s timeout and looks at its
shutdown flag only between two waits (gh-88932), so shutdown() waits for
the rest of the current wait: up to 0.5 s, and, right after a request as
here, nearly all of it. (At a random moment it would be 0.25 s on average.)
Not in the seeds; the seed 001 shows serve_forever(poll_interval=0.5) and
its comment "Polling reduces our responsiveness to a shutdown request".
"""
import pathlib
import socket
import socketserver
import sys
import threading
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "pycommon"))
from labargs import bounded_int, one_line_parser  # noqa: E402


class QuietHandler(socketserver.BaseRequestHandler):
    """The seed's handler without its prints."""

    def handle(self):
        self.request.sendall(self.request.recv(1024).strip().upper())


def main():
    parser = one_line_parser("Lab 12: serve one request, then time shutdown() from another thread.")
    parser.add_argument("--host", default="127.0.0.1", help="host name or address to listen on (default %(default)s)")
    parser.add_argument("--rounds", type=bounded_int(10000), default=5,
                        help="how many servers to start, serve and shut down (default %(default)s)")
    args = parser.parse_args()
    took = []
    for round_ in range(1, args.rounds + 1):
        with socketserver.TCPServer((args.host, 0), QuietHandler) as server:
            server_thread = threading.Thread(target=server.serve_forever)
            server_thread.start()
            with socket.create_connection(server.server_address[:2], timeout=10) as sock:
                sock.sendall(b"hello")
                sock.recv(1024)  # served: the loop is waiting for the next request
            start = time.perf_counter()
            server.shutdown()
            took.append(time.perf_counter() - start)
            server_thread.join()
        print(f"round {round_}: shutdown took {took[-1]:.6f} s")
    mean = sum(took) / len(took)
    took.sort()
    print(f"model=tcp rounds={args.rounds} shutdown_s={mean:.6f} median_s={took[len(took) // 2]:.6f} "
          f"max_s={took[-1]:.6f}")


if __name__ == "__main__":
    main()
