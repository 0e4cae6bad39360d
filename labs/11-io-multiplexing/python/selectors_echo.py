#!/usr/bin/env python3
"""The seed 003 echo server on the selectors module: poll, epoll, epoll edge-triggered (lab 11).

The Python original of mux-poll-echo, mux-epoll-echo and mux-epoll-edge-echo
(--selector poll|epoll|epoll-edge; select works too): the same loop as
select_echo.py written on selectors (register/modify/unregister with
EVENT_READ/EVENT_WRITE, as conclab's Selector), the same lines. The seed
names poll and epoll but shows only select.

Python's selectors has no edge-triggered mode: EdgeSelector below is an
EpollSelector that adds EPOLLET. Edge-triggered, each socket must be read
(and the listener accepted) until BlockingIOError, or the rest waits for an
edge that may never come: --no-drain reads once per report to show it.
"""
import pathlib
import select
import selectors
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from muxcommon import MAX_QUEUED, create_server, echo_parser, show, stop_on_signals, too_high_for_select  # noqa: E402


class EdgeSelector(selectors.EpollSelector):
    _EVENT_READ = select.EPOLLIN | select.EPOLLET
    _EVENT_WRITE = select.EPOLLOUT | select.EPOLLET


SELECTORS = {"select": selectors.SelectSelector, "poll": selectors.PollSelector, "epoll": selectors.EpollSelector,
             "epoll-edge": EdgeSelector}

parser = echo_parser("Lab 11: the seed 003 echo server over many clients, on a selectors back end.")
parser.add_argument("--selector", choices=SELECTORS, default="epoll", help="the back end (default %(default)s)")
parser.add_argument("--no-drain", action="store_true", help="read once per report instead of until EAGAIN")
args = parser.parse_args()
drain = args.selector == "epoll-edge" and not args.no_drain
stop_on_signals()
listener = create_server(args.host, args.port)
listener.setblocking(False)
sel = SELECTORS[args.selector]()
sel.register(listener, selectors.EVENT_READ, None)
served = echoed = 0


class Client:
    def __init__(self, conn, peer):
        self.conn, self.peer = conn, peer
        self.outgoing = bytearray()  # this client's queue: received, not yet sent back
        self.eof = False


def close(c, why=None):
    if why:
        print(f"connection from {c.peer} ended: {why}", file=sys.stderr)
    sel.unregister(c.conn)
    c.conn.close()


def accept_clients():
    global served
    while True:
        try:
            conn, address = listener.accept()
        except BlockingIOError:
            return
        served += 1  # counted first: a stop signal may come once the client is in
        print("accept", show(address))
        if args.selector == "select" and too_high_for_select(conn):
            conn.close()
            continue
        conn.setblocking(False)
        sel.register(conn, selectors.EVENT_READ, Client(conn, show(address)))
        if not drain:
            return


def on_readable(c):
    """True: drained (BlockingIOError) or the client closed."""
    global echoed
    while True:
        try:
            data = c.conn.recv(1024)
        except BlockingIOError:
            return True
        if not data:
            c.eof = True
            return True
        echoed += len(data)
        c.outgoing += data
        if not drain or len(c.outgoing) >= MAX_QUEUED:
            return False


def on_writable(c):
    while c.outgoing:
        try:
            sent = c.conn.send(c.outgoing)
        except BlockingIOError:
            return
        del c.outgoing[:sent]


try:
    print("listening on", show(listener.getsockname()))
    while True:
        for key, events in sel.select():
            c = key.data
            if c is None:
                accept_clients()
                continue
            try:
                drained = not events & selectors.EVENT_READ
                while True:
                    if not drained:
                        drained = on_readable(c)
                    on_writable(c)
                    if not (drain and not drained and len(c.outgoing) < MAX_QUEUED):
                        break
            except OSError as e:  # reset by the client
                close(c, e.strerror)
                continue
            want = (selectors.EVENT_READ if not c.eof and len(c.outgoing) < MAX_QUEUED else 0) | \
                (selectors.EVENT_WRITE if c.outgoing else 0)
            if not want:
                close(c)
            elif want != key.events:
                sel.modify(c.conn, want, c)
except KeyboardInterrupt:
    pass
print(f"model={args.selector} served={served} bytes={echoed}")
