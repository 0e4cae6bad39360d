#!/usr/bin/env python3
"""The seed 003 select() on standard input, in Python 3 (lab 11).

The seed loops on select.select([sys.stdin], [], [], 1) and prints each line
typed. Changes: a line per timeout (the seed prints nothing then), the end of
input (Ctrl-D) ends the loop with a summary line (the seed would spin on it),
--timeout, and stdin is read with os.read() instead of sys.stdin.readline():
sys.stdin reads ahead into a buffer, and select() on the descriptor cannot
see the lines already in that buffer, so two lines typed (or piped) at once
would print one, then wait until more input comes. SIGINT/SIGTERM: the
summary line, exit 0.
"""
import os
import pathlib
import select
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "pycommon"))
from labargs import one_line_parser, stop_on_signals  # noqa: E402


def seconds(text):
    value = float(text)
    if not 0.001 <= value <= 3600:
        raise ValueError(text)
    return value


parser = one_line_parser("Lab 11: select() on stdin with a timeout: echoes each line, a line per timeout.")
parser.add_argument("--timeout", type=seconds, default=1.0, help="seconds select() waits for input (default %(default)s)")
args = parser.parse_args()
stop_on_signals()

lines = timeouts = 0
pending = b""


def show(line):
    global lines
    lines += 1
    sys.stdout.buffer.write(b"select get stdin " + line + b"\n")
    sys.stdout.flush()


try:
    while True:
        readable, writeable, error = select.select([sys.stdin], [], [], args.timeout)
        if sys.stdin not in readable:
            timeouts += 1
            print(f"timeout: no input for {args.timeout:g} s")
            continue
        data = os.read(sys.stdin.fileno(), 4096)
        if not data:
            break  # end of input
        pending += data
        while b"\n" in pending:
            line, pending = pending.split(b"\n", 1)
            show(line)
    if pending:
        show(pending)  # a last line without its newline
except KeyboardInterrupt:
    pass
print(f"model=select lines={lines} timeouts={timeouts}")
