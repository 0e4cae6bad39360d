#!/usr/bin/env python3
"""The seed's Process(target=foo) x 10 in Python 3 (lab 03).

Only changes from the seed: print() is a function, the pid in the line, the
flags (--sleep-ms makes each child sleep after saying hi, as lab 01's
workers do), join() on every process and the summary line.
"""
import os
import pathlib
import sys
import time
from multiprocessing import Process

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "pycommon"))
from labargs import one_line_parser, bounded_int  # noqa: E402


def foo(i, sleep_s):
    print(f"say hi {i} (pid {os.getpid()})")
    time.sleep(sleep_s)


if __name__ == "__main__":
    parser = one_line_parser("Lab 03: start ten processes, each saying hi.")
    parser.add_argument("--processes", type=bounded_int(1000), default=10)
    parser.add_argument("--sleep-ms", type=bounded_int(3_600_000, lower=0), default=0)
    args = parser.parse_args()
    start = time.perf_counter()
    children = []
    for i in range(args.processes):
        p = Process(target=foo, args=(i, args.sleep_ms / 1000))
        p.start()
        children.append(p)
    for p in children:
        p.join()
    ok = sum(p.exitcode == 0 for p in children)
    print(f"model=forked processes={args.processes} sleep_ms={args.sleep_ms} exit_ok={ok} expected={args.processes} "
          f"elapsed_s={time.perf_counter() - start:.3f}")
