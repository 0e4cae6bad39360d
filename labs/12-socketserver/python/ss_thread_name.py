#!/usr/bin/env python3
"""The seed 001 ThreadedTCPRequestHandler program, in Python 3 (lab 12).

The seed's whole program: a ThreadingMixIn TCPServer on any free port, its
serve_forever() in a thread of its own, three clients one after another,
each answered `{thread name}: {data}` by the thread that served it; then
shutdown() and server_close(). Python 3.10+ names a thread after its target:
`Thread-1 (serve_forever)`, `Thread-2 (process_request_thread)`, ...

Changes from the seed: Python 3 (bytes on the wire, encoded and decoded as
ASCII, as the Python 3 documentation's version of this example), --host
(127.0.0.1 rather than localhost, as the C++ program) and --port (0 by
default, as the seed), the listening line and the summary line.
"""
import pathlib
import socket
import socketserver
import sys
import threading

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "pycommon"))
from labargs import net_parser  # noqa: E402

served = 0
served_lock = threading.Lock()


class ThreadedTCPRequestHandler(socketserver.BaseRequestHandler):

    def handle(self):
        global served
        with served_lock:
            served += 1
        data = str(self.request.recv(1024), "ascii")
        cur_thread = threading.current_thread()
        response = bytes("{}: {}".format(cur_thread.name, data), "ascii")
        self.request.sendall(response)


class ThreadedTCPServer(socketserver.ThreadingMixIn, socketserver.TCPServer):
    pass


def client(ip, port, message):
    with socket.socket(socket.AF_INET6 if ":" in ip else socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(10)
        sock.connect((ip, port))
        sock.sendall(bytes(message, "ascii"))
        response = str(sock.recv(1024), "ascii")
        print("Received: {}".format(response))


if __name__ == "__main__":
    args = net_parser("Lab 12: the seed's threaded server answering {thread}: {data} to three clients.",
                      port=0).parse_args()
    # Port 0 means to select an arbitrary unused port
    HOST, PORT = args.host, args.port

    server = ThreadedTCPServer((HOST, PORT), ThreadedTCPRequestHandler)
    with server:
        ip, port = server.server_address[:2]
        print(f"listening on [{ip}]:{port}" if ":" in ip else f"listening on {ip}:{port}")

        # Start a thread with the server -- that thread will then start one
        # more thread for each request
        server_thread = threading.Thread(target=server.serve_forever)
        # Exit the server thread when the main thread terminates
        server_thread.daemon = True
        server_thread.start()
        print("Server loop running in thread:", server_thread.name)

        client(ip, port, "Hello World 1")
        client(ip, port, "Hello World 2")
        client(ip, port, "Hello World 3")

        server.shutdown()
    print(f"model=thread-name clients=3 served={served}")
