#!/usr/bin/env python3
"""The seed 003 server with two listeners, in Python 3 (lab 11).

select.select() over two listening sockets (the seed's 127.0.0.1:8020 and
8021); each accepted connection goes to a thread. Changes: --host, --port and
--port2; a listening line for each; the threads echo (the seed's run the 10086
menu of lab 09, whose bot has no framing); no `looping` line every second
(select waits without a timeout); `get request on ADDRESS from PEER`;
finished threads are joined at each accept; SIGINT/SIGTERM: the threads are
told to stop (their sockets shut down) and joined, then the summary line.
"""
import pathlib
import select
import socket
import sys
import threading

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from muxcommon import bounded_int, create_server, net_parser, show, stop_on_signals  # noqa: E402

parser = net_parser("Lab 11: two listeners in one select(), a thread per connection that echoes.", port=8020)
parser.add_argument("--port2", type=bounded_int(65535, lower=0), default=8021,
                    help="the second port to listen on (0: any free port) (default %(default)s)")
args = parser.parse_args()
stop_on_signals()
s1 = create_server(args.host, args.port)
s2 = create_server(args.host, args.port2)
lock = threading.Lock()
echoed = 0


def process(request, client_address):
    global echoed
    try:
        while True:
            data = request.recv(1024)
            if not data:
                break
            with lock:
                echoed += len(data)
            request.sendall(data)
    except OSError as e:
        if e.errno is not None and not stopping.is_set():
            print(f"connection from {show(client_address)} ended: {e.strerror}", file=sys.stderr)
    finally:
        request.close()


stopping = threading.Event()
threads = []  # (thread, connection)
served = 0
try:
    print("listening on", show(s1.getsockname()))
    print("listening on", show(s2.getsockname()))
    while True:
        r, w, e = select.select([s1, s2], [], [])
        for s in r:
            request, client_address = s.accept()
            served += 1  # counted first: a stop signal may come once the client is in
            print(f"get request on {show(s.getsockname())} from {show(client_address)}")
            threads = [(t, c) for t, c in threads if t.is_alive() or t.join()]
            t = threading.Thread(target=process, args=(request, client_address))
            threads.append((t, request))  # listed before it starts: a stop signal may come in between
            t.start()
except KeyboardInterrupt:
    pass
stopping.set()
for t, conn in threads:  # wake the threads blocked in recv (Python cannot interrupt them otherwise)
    try:
        conn.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
for t, conn in threads:
    if t.ident is not None:  # started
        t.join()
print(f"model=select+threads served={served} bytes={echoed}")
