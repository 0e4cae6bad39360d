"""What the networking checks share (tests/net_*.py): start a server and
learn its port from its first line, run clients against it, stop it with a
signal and require exit 0, count its descriptors, and collect failures.

    with Server([bin / "tcp-echo-server", "--port", "0"]) as server:
        out = run_client([bin / "tcp-echo-client", "--port", str(server.port)])
        before = server.fds()
        ...
    # leaving the block sends SIGTERM and checks exit 0 (server.stop() by hand too)

Every wait is bounded (TIMEOUT_S), so a check that goes wrong fails, never hangs.
"""
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time

TIMEOUT_S = 20
LISTENING = re.compile(r"^listening on (\[[0-9a-fA-F:.]+\]|[^\s:]+):(\d+)$")
failures = []


def fail(message):
    failures.append(message)
    print(f"FAIL: {message}", file=sys.stderr, flush=True)


def check(condition, message):
    if not condition:
        fail(message)
    return condition


def finish():
    """The exit status of a check script: 1 if anything failed."""
    if failures:
        print(f"{len(failures)} check(s) failed", file=sys.stderr)
        return 1
    print("all checks passed")
    return 0


def lab_env():
    env = dict(os.environ)
    env.pop("PYTHONUNBUFFERED", None)
    return env


class Server:
    """A server program running in the background.

    Its first line must be `listening on HOST:PORT` (within TIMEOUT_S); the
    rest of stdout and all of stderr are collected as they come."""

    def __init__(self, cmd, stdin=subprocess.DEVNULL, env=None):
        self.cmd = [str(c) for c in cmd]
        self.name = os.path.basename(self.cmd[0]) if not self.cmd[0].endswith("python3") else self.cmd[1]
        self.proc = subprocess.Popen(self.cmd, stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     env=env or lab_env())
        self.lines = []
        self.err_lines = []
        self._cond = threading.Condition()
        self._readers = [threading.Thread(target=self._read, args=(self.proc.stdout, self.lines), daemon=True),
                         threading.Thread(target=self._read, args=(self.proc.stderr, self.err_lines), daemon=True)]
        for r in self._readers:
            r.start()
        first = self.wait_line(lambda line: True, what="its first line")
        m = LISTENING.match(first or "")
        if not m:
            self.kill()
            raise RuntimeError(f"{self.name}: first line is {first!r}, expected 'listening on HOST:PORT'; "
                               f"stderr: {''.join(self.err_lines)}")
        self.host = m.group(1).strip("[]")
        self.port = int(m.group(2))
        self.status = None

    def _read(self, stream, into):
        for raw in stream:
            with self._cond:
                into.append(raw.decode("utf-8", errors="replace").rstrip("\n"))
                self._cond.notify_all()
        with self._cond:
            into.append(None)  # end of stream
            self._cond.notify_all()

    def wait_line(self, predicate, what="a line", timeout=TIMEOUT_S, start=0):
        """The first stdout line from index `start` on that satisfies `predicate` (None on timeout/EOF)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            i = start
            while True:
                while i < len(self.lines):
                    line = self.lines[i]
                    if line is None:
                        fail(f"{self.name}: output ended while waiting for {what}")
                        return None
                    if predicate(line):
                        return line
                    i += 1
                left = deadline - time.monotonic()
                if left <= 0:
                    fail(f"{self.name}: no {what} within {timeout} s; stdout so far: {self.lines}")
                    return None
                self._cond.wait(left)

    def output(self):
        with self._cond:
            return [line for line in self.lines if line is not None]

    def errors(self):
        with self._cond:
            return [line for line in self.err_lines if line is not None]

    def fds(self):
        """The server's open descriptors, as {fd: target}."""
        path = f"/proc/{self.proc.pid}/fd"
        result = {}
        for fd in os.listdir(path):
            try:
                result[int(fd)] = os.readlink(f"{path}/{fd}")
            except OSError:
                pass
        return result

    def threads(self):
        return int(re.search(r"^Threads:\s+(\d+)", open(f"/proc/{self.proc.pid}/status").read(), re.M).group(1))

    def sleeping(self):
        """Whether the server is asleep in a system call (state S in /proc),
        e.g. blocked in recv(): with a single thread, past the statements
        before that call (a Python server may take a signal between any two)."""
        try:
            stat = open(f"/proc/{self.proc.pid}/stat").read()
        except OSError:
            return False
        return stat[stat.rindex(")") + 2] == "S"

    def alive(self):
        return self.proc.poll() is None

    def stop(self, signo=signal.SIGTERM, expect=0):
        """Send `signo`, wait for the exit and check its status (0: a clean stop)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signo)
        try:
            self.status = self.proc.wait(timeout=TIMEOUT_S)
        except subprocess.TimeoutExpired:
            fail(f"{self.name}: still running {TIMEOUT_S} s after {signal.Signals(signo).name}")
            self.kill()
            return None
        for r in self._readers:
            r.join(TIMEOUT_S)
        if expect is not None:
            check(self.status == expect, f"{self.name}: exit status {self.status} after "
                  f"{signal.Signals(signo).name}, expected {expect}; stderr: {self.errors()}")
        return self.status

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.status is None and self.proc.poll() is None:
            self.stop()
        self.kill()
        return False


def run_client(cmd, input=None, timeout=TIMEOUT_S, expect=0, env=None):
    """Run a client to the end; check its exit status. Returns CompletedProcess (bytes)."""
    cmd = [str(c) for c in cmd]
    try:
        result = subprocess.run(cmd, input=input, capture_output=True, timeout=timeout, env=env or lab_env())
    except subprocess.TimeoutExpired as e:
        fail(f"{' '.join(cmd)}: still running after {timeout} s; stdout: {e.stdout!r}")
        return subprocess.CompletedProcess(cmd, None, e.stdout or b"", e.stderr or b"")
    if expect is not None:
        check(result.returncode == expect, f"{' '.join(cmd)}: exit status {result.returncode}, expected {expect}; "
              f"stderr: {result.stderr.decode(errors='replace')}")
    return result


def connect(port, host="127.0.0.1", timeout=TIMEOUT_S):
    """A raw client socket, for faults a well-behaved client never makes."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(family, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect((host, port))
    return s


def recv_until_closed(sock, limit=1 << 24):
    """Everything the peer sends until it closes (bounded by the socket's timeout)."""
    chunks = []
    total = 0
    while total < limit:
        data = sock.recv(65536)
        if not data:
            break
        chunks.append(data)
        total += len(data)
    return b"".join(chunks)


def reset(sock):
    """Close with an RST instead of a FIN (SO_LINGER 0): a peer that resets."""
    import struct
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def settle(predicate, timeout=TIMEOUT_S):
    """Wait (bounded) until predicate() holds, polling; returns whether it did.
    For state another process reaches on its own (a descriptor closed)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return predicate()
