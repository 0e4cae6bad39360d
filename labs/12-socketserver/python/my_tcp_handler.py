"""The seed's MyTCPHandler (lab 12), shared by the servers of this lab, so
that ss_tcp.py and ss_threading_tcp.py differ in one line: the server class.

The seed 001 handler in Python 3: one recv() of up to 1024 bytes, stripped,
printed under `{host} wrote:`, sent back upper-cased. Changes from the seed:
the data is printed decoded (UTF-8; the seed's Python 2 printed the bytes),
the requests are counted (under a lock: the threading server's handlers run
at once) for the summary line, and a Unix-socket client, whose address is ''
(unnamed), is shown as (unnamed) where the seed's client_address[0] would
raise IndexError. serve_until_stopped() is the loop every server here runs:
the listening line, serve_forever() until Ctrl-C or SIGTERM, server_close().

Two class attributes of the stdlib are set here, for every server of the lab:
TCPServer.allow_reuse_address (SO_REUSEADDR, as conclab's servers: without
it a restart within a minute fails with "Address already in use"), and
ThreadingMixIn.daemon_threads, so that Ctrl-C does not wait in
server_close() for a client that never says anything (conclab's handlers
are woken by the stop signal instead).
"""
import pathlib
import socketserver
import sys
import threading

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "pycommon"))
from labargs import net_parser, stop_on_signals  # noqa: E402,F401  (the servers import them from here)

socketserver.TCPServer.allow_reuse_address = True
socketserver.ThreadingMixIn.daemon_threads = True

served = 0
_served_lock = threading.Lock()


def count_served():
    global served
    with _served_lock:
        served += 1


def who(client_address):
    """The seed's client_address[0]: the host; a Unix client's path, usually (unnamed)."""
    if isinstance(client_address, tuple):
        return client_address[0]
    return client_address or "(unnamed)"


def show(address):
    """host:port, [v6]:port, or a Unix socket's path: as conclab prints an address."""
    if isinstance(address, str):
        return address
    host, port = address[:2]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def print_request(client_address, data):
    print("{} wrote:".format(who(client_address)))
    print(data.decode(errors="replace"))


class MyTCPHandler(socketserver.BaseRequestHandler):
    def handle(self):
        count_served()
        # self.request is the TCP socket connected to the client
        self.data = self.request.recv(1024).strip()
        print_request(self.client_address, self.data)
        # just send back the same data, but upper-cased
        self.request.sendall(self.data.upper())


def serve_until_stopped(server):
    print(f"listening on {show(server.server_address)}")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    server.server_close()
