#!/usr/bin/env python3
"""The seed's upload server in Python 3 (lab 10), holes and all.

For each file on a connection: the header cmd|file_name|file_size in one
recv(1024), the acknowledgement b'nothing', then file_size bytes into
os.path.join(base_path, file_name); again until the client closes. One
thread per connection (socketserver.ThreadingTCPServer), as in the seed.

Changes from the seed:
- --dir replaces base_path = 'G:/temp' (created if missing), --host/--port
  replace ('127.0.0.1', 9999); it prints `listening on HOST:PORT`, stops on
  SIGINT/SIGTERM with exit 0 and the summary line (daemon_threads, so that a
  client still connected does not hold up the exit; allow_reuse_address, as
  conclab's servers set SO_REUSEADDR).
- Bytes on the wire are decoded as UTF-8 (Python 2's str was bytes).
- A client that closes ends the handler: the seed split() the empty read and
  died with ValueError.
- The file's bytes are read with recv(min(1024, what is left)): the seed's
  recv(1024) could read past the end of the file into the next header (a
  sticky packet), write it into the file, then wait for ever for a header
  that had already come.
- A client that closes in the middle of a file ends the handler: the seed's
  loop recv()ed b'' for ever at 100 % CPU.
- It prints the lines of the C++ server (the seed printed `connected...` and
  `upload successed.`), with the CRC-32 of each file (zlib.crc32).

Kept from the seed on purpose (lab 10's README shows them; upload_server.cpp
closes them): the file name is joined to the folder as it comes, so `../x`
or `/tmp/x` writes outside it; the size is not checked (a bad one ends the
connection with a ValueError traceback, any size is taken); an existing file
is overwritten; a file cut short stays behind, half written; a refusal has no
way to reach the client; an idle client keeps its thread for ever.
Do not run it where anyone you do not trust can connect.
"""
import os
import pathlib
import socket
import socketserver
import sys
import threading
import zlib

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "pycommon"))
from labargs import net_parser, stop_on_signals  # noqa: E402

stats = {"served": 0, "uploads": 0, "refused": 0, "dropped": 0, "bytes": 0}
stats_lock = threading.Lock()


def count(key, n=1):
    with stats_lock:
        stats[key] += n


def host_port(address):
    host, port = address[:2]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class MyServer(socketserver.BaseRequestHandler):
    def handle(self):
        base_path = args.dir
        conn = self.request
        peer = host_port(self.client_address)
        count("served")
        print(f"connected {peer}")
        while True:
            pre_data = conn.recv(1024)
            if not pre_data:  # the client is done
                break
            # the command, the file name, the file size
            cmd, file_name, file_size = pre_data.decode().split('|')
            # against sticky packets: tell the client the header has come
            conn.sendall(b'nothing')
            # bytes received so far
            recv_size = 0
            # where the file goes
            file_dir = os.path.join(base_path, file_name)
            f = open(file_dir, 'wb')
            crc = 0
            Flag = True
            while Flag:
                # not all received yet
                if int(file_size) > recv_size:
                    # at most 1024, maybe fewer; never past the end of the file
                    data = conn.recv(min(1024, int(file_size) - recv_size))
                    if not data:
                        f.close()
                        count("dropped")
                        print(f"dropped {peer}: the client closed the connection after {recv_size} of {file_size} "
                              f"bytes of {file_name}", file=sys.stderr)
                        return
                    recv_size += len(data)
                    crc = zlib.crc32(data, crc)
                    # into the file
                    f.write(data)
                # all received: leave the loop
                else:
                    Flag = False
            f.close()
            count("uploads")
            count("bytes", recv_size)
            print(f"upload succeeded: {file_name} bytes={recv_size} crc32={crc:08x}")


class Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True

    def handle_error(self, request, client_address):
        count("dropped")
        super().handle_error(request, client_address)  # the traceback, on stderr


if __name__ == "__main__":
    parser = net_parser("Lab 10: the seed's upload server (cmd|file_name|file_size, b'nothing', the bytes).", 9999)
    parser.add_argument("--dir", default="uploads", help="the upload folder (default %(default)s)")
    args = parser.parse_args()
    stop_on_signals()
    os.makedirs(args.dir, exist_ok=True)
    Server.address_family = socket.getaddrinfo(args.host, args.port, type=socket.SOCK_STREAM)[0][0]
    instance = Server((args.host, args.port), MyServer)
    try:  # from the listening line on, a stop signal ends the loop, never a traceback
        print(f"listening on {host_port(instance.server_address)}")
        instance.serve_forever()
    except KeyboardInterrupt:
        pass
    instance.server_close()
    print("model=threading protocol=seed " + " ".join(f"{k}={v}" for k, v in stats.items()))
