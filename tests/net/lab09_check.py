#!/usr/bin/env python3
"""Lab 09's checks (tests/net/lab09.cmake): the "10086" menu bot.

    lab09_check.py --bin-dir DIR interop SERVER   both clients (C++, Python) against SERVER: the same output
    lab09_check.py --bin-dir DIR bytes SERVER     the exact UTF-8 bytes on the wire, with a raw client
    lab09_check.py --bin-dir DIR waits SERVER     one caller at a time: a second caller gets no greeting until
                                                  the first says exit (SERVER iterative or python)
    lab09_check.py --bin-dir DIR concurrent SERVER  two callers served at once (threaded, socketserver and their Python)
    lab09_check.py --bin-dir DIR faults SERVER    resets, hang-ups without exit, floods, idle callers: no
                                                  crash, no descriptor leak; SIGTERM with a caller: exit 0
    lab09_check.py --bin-dir DIR signals SERVER   SIGINT and SIGTERM, with no caller and with one on the line: exit 0
    lab09_check.py --bin-dir DIR client CLIENT    end of stdin, an empty line, a bot that hangs up or is silent

SERVER: iterative, threaded, socketserver (C++), python, python-threaded, python-socketserver;
CLIENT: cpp, python.
"""
import argparse
import pathlib
import re
import signal
import socket
import sys
import threading
import time

TESTS = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(TESTS))
import netlib  # noqa: E402
from netlib import check, fail  # noqa: E402

LAB = TESTS.parent / "labs" / "09-menu-bot"
WAIT_S = 5  # for an answer or a close on loopback

GREETING = "欢迎致电 10086,请输入1xxx,0转人工服务.".encode()
OPERATOR = "通过可能会被录音.balabala一大推".encode()
TRY_AGAIN = "请重新输入.".encode()
SESSION_INPUT = "0\n1234\n\n你好\nexit\n".encode()
SESSION_OUTPUT = ("receive: 欢迎致电 10086,请输入1xxx,0转人工服务.\n"
                  "please input:0\n"
                  "receive: 通过可能会被录音.balabala一大推\n"
                  "please input:1234\n"
                  "receive: 请重新输入.\n"
                  "please input:\n"
                  "please input:你好\n"
                  "receive: 请重新输入.\n"
                  "please input:exit\n"
                  "model=client sent=4 received=4\n").encode()


def server_cmd(bin_dir, name):
    return {"iterative": [bin_dir / "menu-bot-iterative"],
            "threaded": [bin_dir / "menu-bot-threaded"],
            "python": [sys.executable, LAB / "python" / "menu_bot_server.py"],
            "python-threaded": [sys.executable, LAB / "python" / "menu_bot_threaded.py"],
            "socketserver": [bin_dir / "menu-bot-socketserver"],
            "python-socketserver": [sys.executable, LAB / "python" / "menu_bot_socketserver.py"]}[name]


def client_cmd(bin_dir, name):
    return {"cpp": [bin_dir / "menu-bot-client"],
            "python": [sys.executable, LAB / "python" / "menu_bot_client.py"]}[name]


def start(bin_dir, name, *extra):
    return netlib.Server(server_cmd(bin_dir, name) + ["--host", "127.0.0.1", "--port", "0", *extra])


def connect(port):
    return netlib.connect(port, timeout=WAIT_S)


def recv(sock, what, timeout=WAIT_S):
    """One recv(); None when nothing came within `timeout` (or the connection failed)."""
    sock.settimeout(timeout)
    try:
        return sock.recv(1024)
    except TimeoutError:
        return None
    except OSError as e:
        fail(f"{what}: {e}")
        return None
    finally:
        sock.settimeout(WAIT_S)


def expect(sock, data, what):
    got = recv(sock, what)
    return check(got == data, f"{what}: got {got!r}, expected {data!r}")


def say(sock, message, answer, what):
    """Send one message and require the bot's exact answer (waiting for it keeps us in step)."""
    sock.sendall(message)
    return expect(sock, answer, f"{what}: the answer to {message!r}")


def greeted(port, what):
    s = connect(port)
    expect(s, GREETING, f"{what}: the greeting")
    return s


# --- interop: C++ and Python clients against every server ---------------------------------------


def test_interop(bin_dir, name):
    with start(bin_dir, name) as server:
        for client in ("cpp", "python"):
            result = netlib.run_client(client_cmd(bin_dir, client) + ["--port", str(server.port)], input=SESSION_INPUT)
            check(result.stdout == SESSION_OUTPUT, f"{client} client against {name}: stdout\n"
                  f"{result.stdout.decode(errors='replace')}expected\n{SESSION_OUTPUT.decode()}")
            check(result.stderr == b"", f"{client} client: stderr {result.stderr!r}")
        netlib.settle(lambda: len(server.output()) >= 3)
        server.stop()
        lines = [re.sub(r":\d+$", ":#", line) for line in server.output()]
        check(lines[1:] == ["connection from 127.0.0.1:#"] * 2 + [f"model={model(name)} served=2"],
              f"{name}: output {server.output()}")


def model(name):
    if name.endswith("socketserver"):
        return "socketserver"
    return "threaded" if name.endswith("threaded") else "iterative"


# --- the bytes on the wire ----------------------------------------------------------------------


def test_bytes(bin_dir, name):
    with start(bin_dir, name) as server:
        with greeted(server.port, "raw client") as s:
            say(s, b"0", OPERATOR, "raw client")
            say(s, b"1234", TRY_AGAIN, "raw client")
            say(s, "你好".encode(), TRY_AGAIN, "raw client")
            say(s, b"0", OPERATOR, "raw client")
            # No framing: "0" and "exit" in one send arrive as one recv() of b"0exit", which is
            # neither: the bot asks again and stays on the line ("sticky packets").
            say(s, b"0exit", TRY_AGAIN, "raw client, two messages in one send")
            s.sendall(b"exit")
            check(recv(s, "after exit") == b"", "after exit: the bot did not hang up")
        server.stop()


# --- one caller at a time, or all at once -------------------------------------------------------


def test_waits(bin_dir, name):
    with start(bin_dir, name) as server:
        a = greeted(server.port, "caller A")
        b = connect(server.port)
        early = recv(b, "caller B", timeout=0.5)
        check(early is None, f"caller B was answered ({early!r}) while A holds the one-at-a-time bot")
        say(a, b"0", OPERATOR, "caller A, with B waiting")
        check(recv(b, "caller B", timeout=0.2) is None, "caller B was answered while A is still on the line")
        a.sendall(b"exit")
        check(recv(a, "caller A") == b"", "caller A: not hung up after exit")
        expect(b, GREETING, "caller B, once A has left: the greeting")
        say(b, b"0", OPERATOR, "caller B")
        b.sendall(b"exit")
        a.close()
        b.close()


def test_concurrent(bin_dir, name):
    with start(bin_dir, name) as server:
        a = greeted(server.port, "caller A")
        b = greeted(server.port, "caller B, while A is on the line")
        say(b, b"0", OPERATOR, "caller B")
        say(a, b"1", TRY_AGAIN, "caller A")
        say(a, b"0", OPERATOR, "caller A")
        b.sendall(b"exit")
        check(recv(b, "caller B") == b"", "caller B: not hung up after exit")
        say(a, b"2", TRY_AGAIN, "caller A, after B left")
        a.sendall(b"exit")
        check(recv(a, "caller A") == b"", "caller A: not hung up after exit")
        a.close()
        b.close()


# --- faults -------------------------------------------------------------------------------------


def test_faults(bin_dir, name):
    with start(bin_dir, name, "--idle-timeout", "0.5") as server:
        port = server.port
        before = server.fds()
        leaked = []

        def still_serving(what):
            with greeted(port, f"a caller after {what}") as s:
                say(s, b"0", OPERATOR, f"a caller after {what}")
                s.sendall(b"exit")
                recv(s, "exit")
            netlib.settle(lambda: server.fds() == before, timeout=0 if leaked else WAIT_S)
            after = server.fds()
            if not check(after == before, f"{name}: descriptors after {what}: {after}, before: {before}"):
                leaked.append(what)

        s = greeted(port, "a caller that resets")
        netlib.reset(s)
        still_serving("a reset")

        s = connect(port)
        s.sendall(b"0")
        netlib.reset(s)  # before reading anything: the bot's send may meet the reset
        still_serving("a reset before reading")

        with greeted(port, "a caller that hangs up without exit") as s:
            say(s, b"0", OPERATOR, "a caller that hangs up")
        still_serving("a hang-up without exit")

        with greeted(port, "a silent caller") as s:
            started = time.monotonic()
            gone = recv(s, "a silent caller")
            waited = time.monotonic() - started
            check(gone == b"", f"a silent caller: got {gone!r}, expected the bot to hang up after --idle-timeout")
            check(waited >= 0.4, f"a silent caller: hung up on after {waited:.2f} s, before --idle-timeout 0.5")
        still_serving("a silent caller")

        def flood(sock):
            try:
                for _ in range(64):
                    sock.sendall(b"1" * 65536)
            except OSError:
                pass

        with greeted(port, "a flooding caller") as s:  # 4 MiB, never reading the 请重新输入. answers
            sender = threading.Thread(target=flood, args=(s,))
            sender.start()
            sender.join(2 * WAIT_S)
            check(not sender.is_alive(), f"a flooding caller: the bot neither read nor hung up in {2 * WAIT_S} s")
            netlib.reset(s)
        still_serving("a flood")

        check(server.alive(), f"{name}: died during the faults: {server.errors()}")
        s = greeted(port, "a caller on the line at SIGTERM")
        server.stop()
        s.close()
        last = server.output()[-1] if server.output() else ""
        check(last.startswith(f"model={model(name)} served="), f"last line after SIGTERM: {last!r}")
        check(server.errors() == [], f"stderr: {server.errors()}")
        print("\n".join(server.output()))


def test_signals(bin_dir, name):
    """SIGINT and SIGTERM each stop the bot with exit 0 and its summary, with no caller or one on the line."""
    for signo in (signal.SIGINT, signal.SIGTERM):
        for with_caller in (False, True):
            what = f"{name} after {signal.Signals(signo).name}{' with a caller' if with_caller else ''}"
            with start(bin_dir, name) as server:
                s = greeted(server.port, what) if with_caller else None
                server.stop(signo)
                if s:
                    s.close()
                last = server.output()[-1] if server.output() else ""
                want = f"model={model(name)} served={1 if with_caller else 0}"
                check(last.startswith(want), f"{what}: last line {last!r}, expected {want}...")
                check(server.errors() == [], f"{what}: stderr {server.errors()}")


# --- the clients --------------------------------------------------------------------------------


class FakeBot:
    """A bot that greets (or not), reads the first message, then hangs up (close, reset, or neither)."""

    def __init__(self, greet, end):
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(WAIT_S)
        self.port = self.sock.getsockname()[1]
        self.thread = threading.Thread(target=self.run, args=(greet, end), daemon=True)
        self.thread.start()

    def run(self, greet, end):
        try:
            conn, _ = self.sock.accept()
        except OSError:
            return
        with conn:
            conn.settimeout(WAIT_S)
            try:
                if greet:
                    conn.sendall(GREETING)
                conn.recv(1024)  # read it all: a close with unread bytes would be a reset
                if end == "reset":
                    netlib.reset(conn)
                elif end == "silent":
                    conn.recv(1024)
            except OSError:
                pass

    def close(self):
        self.thread.join(2 * WAIT_S)
        self.sock.close()


def test_client(bin_dir, name):
    cmd = client_cmd(bin_dir, name)
    with start(bin_dir, "threaded") as server:
        port = ["--port", str(server.port)]
        result = netlib.run_client(cmd + port, input="0\n".encode())  # end of stdin: hang up, exit 0
        check(result.stdout == ("receive: 欢迎致电 10086,请输入1xxx,0转人工服务.\nplease input:0\n"
                                "receive: 通过可能会被录音.balabala一大推\nplease input:\n"
                                "model=client sent=1 received=2\n").encode(),
              f"end of stdin: {result.stdout.decode(errors='replace')!r}")
        result = netlib.run_client(cmd + port, input=b"")
        check(result.stdout.endswith(b"please input:\nmodel=client sent=0 received=1\n"),
              f"empty stdin: {result.stdout!r}")
    help_out = netlib.run_client(cmd + ["--help"]).stdout.decode()
    check("8888" in help_out, f"--help does not show the default port 8888: {help_out!r}")

    bot = FakeBot(greet=True, end="close")
    result = netlib.run_client(cmd + ["--port", str(bot.port)], input=b"0\n", expect=1)
    check(result.stderr == b"error: the bot hung up\n", f"a bot that hangs up: stderr {result.stderr!r}")
    bot.close()
    bot = FakeBot(greet=True, end="reset")
    result = netlib.run_client(cmd + ["--port", str(bot.port)], input=b"0\n", expect=1)
    # (after a reset, conclab names the local address: the peer's is gone)
    check(re.fullmatch(rb"error: recv: Connection reset by peer; (peer )?127\.0\.0\.1:\d+\n", result.stderr),
          f"a bot that resets: stderr {result.stderr!r}")
    bot.close()
    bot = FakeBot(greet=False, end="silent")
    started = time.monotonic()
    result = netlib.run_client(cmd + ["--port", str(bot.port), "--timeout", "0.5"], input=b"0\n", expect=1)
    check(result.stderr == b"error: recv: timed out\n", f"a silent bot: stderr {result.stderr!r}")
    check(time.monotonic() - started < WAIT_S, "a silent bot: the client did not give up after --timeout 0.5")
    bot.close()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--bin-dir", type=pathlib.Path, required=True)
    parser.add_argument("test", choices=["interop", "bytes", "waits", "concurrent", "faults", "signals", "client"])
    parser.add_argument("name")
    args = parser.parse_args()
    {"interop": test_interop, "bytes": test_bytes, "waits": test_waits, "concurrent": test_concurrent,
     "faults": test_faults, "signals": test_signals, "client": test_client}[args.test](args.bin_dir, args.name)
    return netlib.finish()


if __name__ == "__main__":
    sys.exit(main())
