#!/usr/bin/env python3
"""The seed's upload client in Python 3 (lab 10).

For each file: the header, then wait for the server's signal (recv(1024),
whose content it ignores), then the bytes in chunks of 1 KiB; all the files
over one connection.

Changes from the seed:
- The header is post|file_name|file_size. The seed's client sends
  file_name|file_size, which its own server cannot split into
  cmd,file_name,file_size (ValueError): a bug of the seed. `post` is the cmd.
- The files are the command's arguments: the seed asks for each path with
  raw_input('path:') in an endless loop (and then reads the undefined `path`,
  a NameError). Once they are sent, the client closes the connection.
- --host/--port replace ('127.0.0.1', 9999); socket.create_connection
  resolves the host (IPv6 too).
- The chunks go with sendall(), as the seed's own note on large files says
  (send() may take only part of a chunk).
- It prints what it sent with its CRC-32 (zlib.crc32), and a summary line.

Kept from the seed: the acknowledgement is read and ignored. A refusal by
upload-server ("error: <reason>" in place of "nothing", then it closes)
goes unnoticed: the bytes go into a closed connection, which fails with
BrokenPipeError or ConnectionResetError, or, for a small file, not at all.
"""
import os
import pathlib
import socket
import sys
import zlib

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "pycommon"))
from labargs import net_parser  # noqa: E402

if __name__ == "__main__":
    parser = net_parser("Lab 10: the seed's upload client (post|file_name|file_size, wait, the bytes).", 9999,
                        role="connect to")
    parser.add_argument("files", nargs="+", help="the files to upload, one after the other on one connection")
    args = parser.parse_args()

    ip_port = (args.host, args.port)
    sk = socket.create_connection(ip_port)
    total = 0
    for path in args.files:
        # the file's name from its path
        file_name = os.path.basename(path)
        # the file's size
        file_size = os.stat(path).st_size
        # send the command, the file name and the size
        sk.send(f"post|{file_name}|{file_size}".encode())
        # against sticky packets: wait until the server says it has the header
        sk.recv(1024)
        send_size = 0
        crc = 0
        f = open(path, 'rb')
        Flag = True
        while Flag:
            if send_size + 1024 > file_size:
                data = f.read(file_size - send_size)
                Flag = False
            else:
                data = f.read(1024)
                send_size += 1024
            sk.sendall(data)
            crc = zlib.crc32(data, crc)
        f.close()
        print(f"sent {file_name} bytes={file_size} crc32={crc:08x}")
        total += file_size

    sk.close()
    print(f"protocol=seed files={len(args.files)} bytes={total}")
