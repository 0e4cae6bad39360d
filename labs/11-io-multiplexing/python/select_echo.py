#!/usr/bin/env python3
"""The seed 003 select() server, made an echo server with read and write lists, in Python 3 (lab 11).

The seed's server selects over the listener and every client (read list),
prints `accept` and `received data: ...`, and answers nothing; its second
version, as the issue asks, echoes: clients with something to send go in the
write list, and each has its outgoing queue (a bytearray here). No client
blocks another: an idle one is just not ready. Changes: --host/--port (the
seed's 127.0.0.1:8002), the listening line, `accept PEER` and no
`received data:` line (a 1 MiB message would print 1 MiB), the summary line
on SIGINT/SIGTERM (exit 0); a client that closes its side still gets its
queued bytes, then is closed; a client that does not read stops being read
once 256 KiB wait for it (a plain queue would grow without bound); a reset
client is closed with a line on stderr instead of a traceback that ends the
server, and so is a client whose descriptor select() cannot take (1024 and
above: select.select() raises ValueError, and the seed's server would die).
"""
import pathlib
import select
import socket
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from muxcommon import MAX_QUEUED, create_server, echo_parser, show, stop_on_signals, too_high_for_select  # noqa: E402

args = echo_parser("Lab 11: the seed 003 echo server over many clients, on select().").parse_args()
stop_on_signals()
sk1 = create_server(args.host, args.port)
sk1.setblocking(False)

inputs = [sk1]
outputs = []
queues = {}   # client -> bytes received, not yet sent back
peers = {}
closing = set()  # clients that closed their side: close ours once the queue is sent
served = echoed = 0


def close(conn, why=None):
    if why:
        print(f"connection from {peers[conn]} ended: {why}", file=sys.stderr)
    for lst in (inputs, outputs):
        if conn in lst:
            lst.remove(conn)
    closing.discard(conn)
    del queues[conn], peers[conn]
    conn.close()


try:
    print("listening on", show(sk1.getsockname()))
    while True:
        readable_list, writeable_list, error_list = select.select(inputs, outputs, [])
        for r in readable_list:
            if r is sk1:  # a client connects
                conn, address = r.accept()
                served += 1  # counted first: a stop signal may come once the client is in
                print("accept", show(address))
                if too_high_for_select(conn):  # select.select() would raise ValueError for every socket
                    conn.close()
                    continue
                conn.setblocking(False)
                inputs.append(conn)
                queues[conn] = bytearray()
                peers[conn] = show(address)
                continue
            try:
                received = r.recv(1024)
            except OSError as e:  # reset by the client
                close(r, e.strerror)
                continue
            if received:
                echoed += len(received)
                queues[r] += received
                if r not in outputs:
                    outputs.append(r)
                if len(queues[r]) >= MAX_QUEUED:
                    inputs.remove(r)  # it does not read: stop reading it until its queue shrinks
            else:  # the client closed its side
                inputs.remove(r)
                closing.add(r)
                if not queues[r]:
                    close(r)
        for w in writeable_list:
            if w not in queues:
                continue  # closed above
            try:
                sent = w.send(queues[w])
            except BlockingIOError:
                continue
            except OSError as e:
                close(w, e.strerror)
                continue
            del queues[w][:sent]
            if not queues[w]:
                outputs.remove(w)
                if w in closing:
                    close(w)
                    continue
            if len(queues[w]) < MAX_QUEUED and w not in closing and w not in inputs:
                inputs.append(w)
except KeyboardInterrupt:
    pass
print(f"model=select served={served} bytes={echoed}")
