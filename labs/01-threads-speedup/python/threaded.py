#!/usr/bin/env python3
"""The seed's threaded program in Python 3: each worker in its own thread.

Only changes from the seed: print() is a function, range() replaces xrange(),
the flags, and join() on every thread so that the elapsed time printed at the
end includes them (the seed let the interpreter wait for them at exit).
"""
import pathlib
import sys
import threading
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "pycommon"))
from labargs import worker_args  # noqa: E402


def worker(sleep_s):
    print("worker")
    time.sleep(sleep_s)
    return


if __name__ == "__main__":
    args = worker_args("Lab 01: run each worker in its own thread.")
    start = time.perf_counter()
    threads = []
    for i in range(args.tasks):
        t = threading.Thread(target=worker, args=(args.sleep_ms / 1000,))
        t.start()
        threads.append(t)
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    expected = args.sleep_ms / 1000
    print(f"elapsed {elapsed:.3f} s (expected about {expected:.3f} s: "
          f"{args.tasks} tasks x {args.sleep_ms} ms, all at once)")
    print(f"model=threaded tasks={args.tasks} sleep_ms={args.sleep_ms} elapsed_s={elapsed:.3f}")
