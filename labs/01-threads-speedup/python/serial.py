#!/usr/bin/env python3
"""The seed's serial program in Python 3: five workers, one after the other.

Only changes from the seed: print() is a function, range() replaces xrange(),
the flags, and the elapsed time with the summary line at the end.
"""
import pathlib
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "pycommon"))
from labargs import worker_args  # noqa: E402


def worker(sleep_s):
    print("worker")
    time.sleep(sleep_s)
    return


if __name__ == "__main__":
    args = worker_args("Lab 01: run the workers one after the other.")
    start = time.perf_counter()
    for i in range(args.tasks):
        worker(args.sleep_ms / 1000)
    elapsed = time.perf_counter() - start
    expected = args.tasks * args.sleep_ms / 1000
    print(f"elapsed {elapsed:.3f} s (expected about {expected:.3f} s: "
          f"{args.tasks} tasks x {args.sleep_ms} ms, in a row)")
    print(f"model=serial tasks={args.tasks} sleep_ms={args.sleep_ms} elapsed_s={elapsed:.3f}")
