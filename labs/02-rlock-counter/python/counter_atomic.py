#!/usr/bin/env python3
"""The closest Python has to an atomic counter (lab 02, step 3, Python).

Python has no atomic integer. next() on an itertools.count is one call into C
that the GIL does not interrupt, so it never loses an increment; this relies
on CPython's GIL, not on a language guarantee.
"""
import itertools
import pathlib
import sys
import threading
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "pycommon"))
from labargs import counter_args  # noqa: E402

counter = itertools.count(1)


def work(increments):
    for _ in range(increments):
        next(counter)


if __name__ == "__main__":
    args = counter_args("Lab 02: increment a shared counter with itertools.count.")
    start = time.perf_counter()
    threads = [threading.Thread(target=work, args=(args.increments,)) for _ in range(args.threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    total = next(counter) - 1
    print(f"model=atomic threads={args.threads} increments={args.increments} counter={total} "
          f"expected={args.threads * args.increments} elapsed_s={time.perf_counter() - start:.3f}")
