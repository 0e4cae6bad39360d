#!/usr/bin/env python3
"""Threads increment one global counter with no lock (lab 02, step 1, Python).

`gl_num += 1` is several bytecodes (load, add, store); a thread switch between
them loses an update. CPython 3.10+ switches threads only at certain
bytecodes, so on 3.11 the loss is rare: run it a few times, or compare with
the C++ program, which loses hundreds of thousands.
"""
import pathlib
import sys
import threading
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "pycommon"))
from labargs import counter_args  # noqa: E402

gl_num = 0


def work(increments):
    global gl_num
    for _ in range(increments):
        gl_num += 1


if __name__ == "__main__":
    args = counter_args("Lab 02: increment a shared counter without a lock.")
    start = time.perf_counter()
    threads = [threading.Thread(target=work, args=(args.increments,)) for _ in range(args.threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    expected = args.threads * args.increments
    print(f"lost updates: {expected - gl_num}")
    print(f"model=unsync threads={args.threads} increments={args.increments} counter={gl_num} "
          f"expected={expected} elapsed_s={time.perf_counter() - start:.3f}")
