#!/usr/bin/env python3
"""Checks of lab 10 (file upload), run by ctest (tests/net/lab10.cmake).

    lab10_check.py CHECK --bin DIR --labs DIR

CHECK is one of:
  interop PAIR    files of 0, 1, 1023, 1024, 1025 bytes and ~3 MiB, all on one
                  connection, arrive byte for byte, and the client's
                  `sent NAME bytes=N crc32=X` lines match the server's
                  `upload succeeded: NAME bytes=N crc32=X` lines and zlib.crc32;
                  PAIR: cpp-python (C++ client, the seed's Python server),
                  python-cpp, cpp-cpp, framed (both C++, framed protocol)
  names PROTO     every hostile file name is refused, with "error: <reason>"
                  to the client and "refused" on stderr; nothing is written
                  anywhere in the tree around --dir; PROTO: seed or framed
  sizes PROTO     a size that is not a number, negative or over --max-bytes is refused
  cut PROTO       a client that closes or resets mid-upload leaves no file and
                  no temporary; no descriptor leaks; a good upload works afterwards
  overwrite PROTO an existing file is kept without --overwrite, replaced with it
  idle            an idle client (before a header, mid-file) is dropped after
                  --idle-timeout; no leak; the server goes on
  sticky          upload-client --no-ack: header and bytes in one read, the seed's
                  server takes the bytes for the size; the framed server does not care
  signals         SIGTERM (even mid-upload: no temporary left) and SIGINT: exit 0
                  and the summary line, for the C++ servers and the Python one
  python-holes    the seed's Python server keeps the seed's holes (README says so):
                  `../x` lands outside --dir, a cut upload stays half written
  bad-flags       a bad flag or value: exit 2 and one line on stderr; --help: exit 0
"""
import argparse
import os
import pathlib
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import zlib

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
import netlib  # noqa: E402
from netlib import Server, check, fail, run_client  # noqa: E402

SIZES = [0, 1, 1023, 1024, 1025, 3 * 1024 * 1024 + 17]
SERVERS = {"seed": "upload-server", "framed": "upload-server-framed"}
CLIENTS = {"seed": "upload-client", "framed": "upload-client-framed"}
END = {"seed": b"", "framed": b"\n"}  # what ends a header and an error message
SUMMARY = re.compile(r"^model=\S+ protocol=(seed|framed) served=\d+ uploads=\d+ refused=\d+ dropped=\d+ bytes=\d+$")


def tree(root):
    """Every file and folder under root, as sorted relative paths."""
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            out.append(os.path.relpath(os.path.join(dirpath, name), root))
    return sorted(out)


def make_files(folder, sizes):
    folder.mkdir(parents=True, exist_ok=True)
    files = []
    for size in sizes:
        path = folder / f"file-{size}.bin"
        path.write_bytes(os.urandom(size))
        files.append(path)
    return files


def crc(data):
    return f"{zlib.crc32(data) & 0xffffffff:08x}"


def wait_err(server, predicate, what):
    if not netlib.settle(lambda: any(predicate(line) for line in server.errors())):
        fail(f"{server.name}: no {what} on stderr; stderr: {server.errors()}")
        return None
    return next(line for line in server.errors() if predicate(line))


def wait_settled(server, before, what):
    """No descriptor leaked: the server's descriptors come back to `before`."""
    if not netlib.settle(lambda: server.fds() == before):
        fail(f"{server.name}: descriptors after {what}: {server.fds()}, before: {before}")


def upload_ok(args, server, protocol, tmp, name="good.txt", data=b"still serving\n"):
    """A good upload with the C++ client: saved whole, the server says so."""
    src = tmp / "src" / name
    src.parent.mkdir(parents=True, exist_ok=True)
    src.write_bytes(data)
    out = run_client([args.bin / CLIENTS[protocol], "--port", server.port, src]).stdout.decode()
    line = f"upload succeeded: {name} bytes={len(data)} crc32={crc(data)}"
    server.wait_line(lambda l: l == line, what=f"'{line}'")
    check(f"sent {name} bytes={len(data)} crc32={crc(data)}" in out, f"client output: {out!r}")


def server_cmd(args, protocol, folder, *extra):
    return [args.bin / SERVERS[protocol], "--port", "0", "--dir", folder, *extra]


def send_header(sock, protocol, header):
    """Send a header; for the seed protocol also read the acknowledgement. Returns the ack (b"" for framed)."""
    sock.sendall(header + END[protocol])
    if protocol == "seed":
        return sock.recv(1024)
    return b""


# --- interop ------------------------------------------------------------------------


def check_interop(args, tmp, pair):
    py = [sys.executable]
    server, client = {
        "cpp-python": (py + [args.labs / "python/upload_server.py"], [args.bin / "upload-client"]),
        "python-cpp": ([args.bin / "upload-server"], py + [args.labs / "python/upload_client.py"]),
        "cpp-cpp": ([args.bin / "upload-server"], [args.bin / "upload-client"]),
        "framed": ([args.bin / "upload-server-framed"], [args.bin / "upload-client-framed"]),
    }[pair]
    folder = tmp / "uploads"
    files = make_files(tmp / "src", SIZES)
    with Server(server + ["--port", "0", "--dir", folder]) as srv:
        out = run_client(client + ["--port", srv.port] + files).stdout.decode().splitlines()
        for f in files:
            data = f.read_bytes()
            expected = f"{f.name} bytes={len(data)} crc32={crc(data)}"
            check(f"sent {expected}" in out, f"{pair}: client did not print 'sent {expected}'; it printed {out}")
            got = srv.wait_line(lambda l, n=f.name: l.startswith(f"upload succeeded: {n} "), what=f"{f.name} saved")
            check(got == f"upload succeeded: {expected}", f"{pair}: server printed {got!r}, expected {expected!r}")
        check(out and out[-1] == f"protocol={'framed' if pair == 'framed' else 'seed'} files={len(files)} "
              f"bytes={sum(len(f.read_bytes()) for f in files)}", f"{pair}: client summary: {out[-1:]}")
        srv.stop()
        check(any(SUMMARY.match(l) and f"uploads={len(files)}" in l for l in srv.output()),
              f"{pair}: server summary missing or wrong: {srv.output()[-1:]}")
    for f in files:
        saved = folder / f.name
        check(saved.exists() and saved.read_bytes() == f.read_bytes(),
              f"{pair}: {f.name} ({f.stat().st_size} bytes) not saved byte for byte")
    check(tree(folder) == sorted(f.name for f in files), f"{pair}: the folder holds {tree(folder)}")


# --- names, sizes ---------------------------------------------------------------------


def refused(args, tmp, protocol, cases, extra=()):
    """Each (header, reason) is refused: the reply, stderr, and nothing written in the tree."""
    folder = tmp / "box" / "uploads"
    (folder / "a").mkdir(parents=True)  # so that a/b could be written if the server let it through
    before_tree = tree(tmp)
    with Server(server_cmd(args, protocol, folder, "--idle-timeout", "1", *extra)) as server:
        fds = server.fds()
        for header, reason in cases:
            with netlib.connect(server.port, timeout=5) as sock:
                sock.sendall(header + END[protocol])
                try:
                    reply = netlib.recv_until_closed(sock)  # the server closes after a refusal
                except OSError as e:  # a timeout: the server took the header
                    reply = repr(e).encode()
            want = f"error: {reason}".encode() + END[protocol]
            check(reply == want, f"{protocol}: header {header!r}: reply {reply!r}, expected {want!r}")
            wait_err(server, lambda l, r=reason: l.startswith("refused 127.0.0.1:") and l.endswith(r),
                     f"'refused ...: {reason}'")
        wait_settled(server, fds, "the refused clients")
        upload_ok(args, server, protocol, tmp)
    check(tree(tmp) == sorted(before_tree + ["box/uploads/good.txt", "src", "src/good.txt"]),
          f"{protocol}: files written besides good.txt: {sorted(set(tree(tmp)) - set(before_tree))}")


def check_names(args, tmp, protocol):
    outside = tmp / "box" / "abs.txt"  # an absolute path (not /etc/passwd: a broken server would destroy it)
    cases = [
        (b"post|../x|5", 'file name "../x" has a path separator'),
        (f"post|{outside}|5".encode(), f'file name "{outside}" is an absolute path'),
        (b"post|a/b|5", 'file name "a/b" has a path separator'),
        (b"post|a\\b|5", 'file name "a\\\\b" has a path separator'),
        (b"post|..|5", 'file name ".." is a directory'),
        (b"post|.|5", 'file name "." is a directory'),
        (b"post|a\0b|5", 'file name "a\\x00b" has a control character'),
        (b"post||5", "empty file name"),
        (b"post|" + b"n" * 256 + b"|5", "file name longer than 255 bytes"),
        (b"get|x|5", 'unknown command "get" (only post)'),
        (b"post|x", 'header "post|x" is not cmd|file_name|file_size'),
    ]
    long_header = b"post|" + b"n" * 2000 + b"|5"  # longer than a header may be (1024 bytes)
    if protocol == "seed":  # the first 1024 bytes are the header
        cases.append((long_header, f'header "post|{"n" * 75}"... is not cmd|file_name|file_size'))
    else:
        cases.append((long_header, "readline: no end of line within 1024 bytes"))
    refused(args, tmp, protocol, cases)


def check_sizes(args, tmp, protocol):
    cases = [
        (b"post|x|abc", 'file size "abc" is not a number'),
        (b"post|x|", 'file size "" is not a number'),
        (b"post|x|5x", 'file size "5x" is not a number'),
        (b"post|x|+5", 'file size "+5" is not a number'),
        (b"post|x|-5", "file size -5 is negative"),
        (b"post|x|1001", "file size 1001 exceeds --max-bytes 1000"),
        (b"post|x|99999999999999999999999", "file size 99999999999999999999999 exceeds --max-bytes 1000"),
    ]
    refused(args, tmp, protocol, cases, extra=("--max-bytes", "1000"))


# --- faults ---------------------------------------------------------------------------


def check_cut(args, tmp, protocol):
    folder = tmp / "uploads"
    body = os.urandom(4096)
    with Server(server_cmd(args, protocol, folder)) as server:
        fds = server.fds()
        for how in ("close", "reset"):
            sock = netlib.connect(server.port)
            ack = send_header(sock, protocol, b"post|cut.bin|4096")
            check(protocol != "seed" or ack == b"nothing", f"{protocol}: ack {ack!r}")
            sock.sendall(body[:2048])
            # the temporary exists while the upload runs...
            netlib.settle(lambda: tree(folder))
            check(any(n.startswith(".upload-") and n.endswith(".part") for n in tree(folder)),
                  f"{protocol}: no temporary while receiving: {tree(folder)}")
            if how == "reset":
                netlib.reset(sock)
                reason = "recv: Connection reset by peer"
            else:
                sock.close()
                reason = "the client closed the connection after 2048 of 4096 bytes of cut.bin"
            wait_err(server, lambda l, r=reason: l.startswith("dropped ") and r in l, f"'dropped ...: {reason}'")
            # ...and neither it nor the file is left once the client is gone
            check(netlib.settle(lambda: tree(folder) == []), f"{protocol}: after a {how} mid-upload: {tree(folder)}")
            wait_settled(server, fds, f"a client that {how}s mid-upload")
        upload_ok(args, server, protocol, tmp)
        check(server.alive(), "the server died")


def check_overwrite(args, tmp, protocol):
    folder = tmp / "uploads"
    src = tmp / "src" / "same.txt"
    src.parent.mkdir()
    src.write_bytes(b"first\n")
    with Server(server_cmd(args, protocol, folder)) as server:
        run_client([args.bin / CLIENTS[protocol], "--port", server.port, src])
        src.write_bytes(b"second\n")
        result = run_client([args.bin / CLIENTS[protocol], "--port", server.port, src], expect=1)
        err = result.stderr.decode()
        check(err == "error: the server refused same.txt: same.txt exists (the server has no --overwrite)\n",
              f"{protocol}: client's message: {err!r}")
        wait_err(server, lambda l: l.endswith("same.txt exists (the server has no --overwrite)"), "'exists'")
    check((folder / "same.txt").read_bytes() == b"first\n", f"{protocol}: overwritten without --overwrite")
    with Server(server_cmd(args, protocol, folder, "--overwrite")) as server:
        run_client([args.bin / CLIENTS[protocol], "--port", server.port, src])
        server.wait_line(lambda l: l.startswith("upload succeeded: same.txt bytes=7"), what="the second upload")
    check((folder / "same.txt").read_bytes() == b"second\n", f"{protocol}: not replaced with --overwrite")
    check(tree(folder) == ["same.txt"], f"{protocol}: folder holds {tree(folder)}")


def check_idle(args, tmp):
    folder = tmp / "uploads"
    with Server(server_cmd(args, "seed", folder, "--idle-timeout", "0.5")) as server:
        fds = server.fds()
        # a client that sends nothing at all
        start = time.monotonic()
        with netlib.connect(server.port) as sock:
            reply = netlib.recv_until_closed(sock)
        took = time.monotonic() - start
        check(reply == b"error: idle for 0.5 s", f"idle client got {reply!r}")
        check(0.4 <= took < 10, f"idle client dropped after {took:.2f} s, --idle-timeout 0.5")
        wait_err(server, lambda l: l.startswith("dropped 127.0.0.1:") and l.endswith("idle for 0.5 s"), "'idle'")
        # a client that stops in the middle of a file
        with netlib.connect(server.port) as sock:
            check(send_header(sock, "seed", b"post|slow.bin|100") == b"nothing", "no ack")
            sock.sendall(b"x" * 40)
            reply = netlib.recv_until_closed(sock)
        check(reply == b"error: idle for 0.5 s", f"client idle mid-file got {reply!r}")
        check(netlib.settle(lambda: tree(folder) == []), f"idle mid-file left {tree(folder)}")
        wait_settled(server, fds, "two idle clients")
        upload_ok(args, server, "seed", tmp)
        check(len([l for l in server.errors() if "idle for 0.5 s" in l]) == 2, f"stderr: {server.errors()}")


def check_sticky(args, tmp):
    src = tmp / "src"
    src.mkdir()
    (src / "hello.txt").write_bytes(b"hello\n")
    (src / "digits.txt").write_bytes(b"12345")
    folder = tmp / "uploads"
    with Server(server_cmd(args, "seed", folder)) as server:
        # the bytes stick to the header: the size is "6hello" ...
        out = run_client([args.bin / "upload-client", "--port", server.port, "--no-ack", src / "hello.txt"])
        check('the server answered "error: file size \\"6hello\\" is not a number"' in out.stdout.decode(),
              f"--no-ack hello.txt: {out.stdout.decode()!r}")
        # ... or, worse, a number: 5 followed by the file's 12345
        out = run_client([args.bin / "upload-client", "--port", server.port, "--no-ack", src / "digits.txt"])
        check("the client closed the connection after 0 of 512345 bytes of digits.txt" in out.stdout.decode(),
              f"--no-ack digits.txt: {out.stdout.decode()!r}")
        # with the acknowledgement, the same file goes through
        out = run_client([args.bin / "upload-client", "--port", server.port, src / "digits.txt"])
        server.wait_line(lambda l: l == f"upload succeeded: digits.txt bytes=5 crc32={crc(b'12345')}",
                         what="digits.txt with the acknowledgement")
    check(tree(folder) == ["digits.txt"], f"seed: folder holds {tree(folder)}")
    # the framed server: header and bytes in one send are what it expects
    folder = tmp / "framed"
    with Server(server_cmd(args, "framed", folder)) as server:
        with netlib.connect(server.port) as sock:
            sock.sendall(b"post|digits.txt|5\n12345post|hello.txt|6\nhello\n")
            sock.shutdown(socket.SHUT_WR)
            reply = netlib.recv_until_closed(sock)
        hello_crc = crc(b"hello\n")
        want = f"ok bytes=5 crc32={crc(b'12345')}\nok bytes=6 crc32={hello_crc}\n".encode()
        check(reply == want, f"framed, everything in one send: {reply!r}, expected {want!r}")
    check((folder / "digits.txt").read_bytes() == b"12345" and (folder / "hello.txt").read_bytes() == b"hello\n",
          f"framed: {tree(folder)}")


def check_signals(args, tmp):
    for protocol in ("seed", "framed"):
        for signo in (signal.SIGTERM, signal.SIGINT):
            folder = tmp / f"{protocol}-{signo.name}"
            with Server(server_cmd(args, protocol, folder)) as server:
                sock = netlib.connect(server.port)
                send_header(sock, protocol, b"post|half.bin|100")
                sock.sendall(b"y" * 50)
                check(netlib.settle(lambda: any(n.endswith(".part") for n in tree(folder))), "no temporary")
                server.stop(signo)  # exit 0 required
                sock.close()
            last = server.output()[-1:]
            check(last and SUMMARY.match(last[0]) and "served=1 uploads=0" in last[0],
                  f"{protocol} after {signo.name}: last line {last}")
            check(tree(folder) == [], f"{protocol} stopped mid-upload left {tree(folder)}")
    with Server([sys.executable, args.labs / "python/upload_server.py", "--port", "0", "--dir", tmp / "py"]) as srv:
        srv.stop()
    check(srv.output()[-1:] == ["model=threading protocol=seed served=0 uploads=0 refused=0 dropped=0 bytes=0"],
          f"upload_server.py after SIGTERM: {srv.output()[-1:]}")


def check_python_holes(args, tmp):
    folder = tmp / "uploads"
    with Server([sys.executable, args.labs / "python/upload_server.py", "--port", "0", "--dir", folder]) as server:
        with netlib.connect(server.port) as sock:
            check(send_header(sock, "seed", b"post|../escaped.txt|3") == b"nothing", "no ack")
            sock.sendall(b"abc")
        server.wait_line(lambda l: l.startswith("upload succeeded: ../escaped.txt"), what="the escaped upload")
        check((tmp / "escaped.txt").read_bytes() == b"abc", f"../escaped.txt not outside --dir: {tree(tmp)}")
        with netlib.connect(server.port) as sock:
            send_header(sock, "seed", b"post|half.bin|100")
            sock.sendall(b"z" * 50)
        wait_err(server, lambda l: "after 50 of 100 bytes of half.bin" in l, "'dropped'")
        check((folder / "half.bin").read_bytes() == b"z" * 50, f"the half file is not left: {tree(tmp)}")


def check_bad_flags(args, tmp):
    py = sys.executable
    src = tmp / "f.txt"
    src.write_bytes(b"x")
    servers = [[args.bin / "upload-server"], [args.bin / "upload-server-framed"],
               [py, args.labs / "python/upload_server.py"]]
    clients = [[args.bin / "upload-client"], [args.bin / "upload-client-framed"],
               [py, args.labs / "python/upload_client.py"]]
    bad = []
    for server in servers:
        bad += [server + ["--bogus"], server + ["--port", "70000"], server + ["--port", "x"]]
        if server[0] != py:
            bad += [server + ["--idle-timeout", "0"], server + ["--idle-timeout", "abc"],
                    server + ["--max-bytes", "-1"], server + ["--max-bytes", "lots"]]
    for client in clients:
        bad += [client, client + ["--bogus", src], client + ["--port", "-1", src]]
        if client[0] != py:
            bad += [client + ["--as", "y", src, src]]
    for cmd in bad:
        result = run_client(cmd, expect=2, timeout=20)
        err = result.stderr.decode()
        check(err.count("\n") == 1, f"{' '.join(map(str, cmd))}: stderr is not one line: {err!r}")
    for cmd in servers + clients:
        run_client(cmd + ["--help"], expect=0)
    # a failed call: exit 1, "error: ..."
    with Server(server_cmd(args, "seed", tmp / "u")) as server:
        result = run_client([args.bin / "upload-server", "--port", server.port, "--dir", tmp / "u"], expect=1)
        check(result.stderr.decode().startswith("error: bind: Address already in use"),
              f"port in use: {result.stderr!r}")
    result = run_client([args.bin / "upload-client", "--port", "1", src], expect=1)
    check(result.stderr.decode().startswith("error: connect: Connection refused"), f"refused: {result.stderr!r}")
    result = run_client([args.bin / "upload-client", tmp / "missing.txt"], expect=1)
    check("missing.txt" in result.stderr.decode(), f"missing file: {result.stderr!r}")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("check")
    parser.add_argument("variant", nargs="?")
    parser.add_argument("--bin", required=True, type=pathlib.Path)
    parser.add_argument("--labs", required=True, type=pathlib.Path, help="labs/10-file-upload")
    args = parser.parse_args()
    checks = {"interop": check_interop, "names": check_names, "sizes": check_sizes, "cut": check_cut,
              "overwrite": check_overwrite, "idle": check_idle, "sticky": check_sticky,
              "signals": check_signals, "python-holes": check_python_holes, "bad-flags": check_bad_flags}
    with tempfile.TemporaryDirectory(prefix="conclab-lab10-") as tmp:
        fn = checks[args.check]
        if args.variant:
            fn(args, pathlib.Path(tmp), args.variant)
        else:
            fn(args, pathlib.Path(tmp))
    return netlib.finish()


if __name__ == "__main__":
    sys.exit(main())
