#!/usr/bin/env python3
"""The same counter with a threading.Lock around each increment (lab 02, step 2, Python)."""
import pathlib
import sys
import threading
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "pycommon"))
from labargs import counter_args  # noqa: E402

gl_num = 0
lock = threading.Lock()


def work(increments):
    global gl_num
    for _ in range(increments):
        with lock:
            gl_num += 1


if __name__ == "__main__":
    args = counter_args("Lab 02: increment a shared counter under a lock.")
    start = time.perf_counter()
    threads = [threading.Thread(target=work, args=(args.increments,)) for _ in range(args.threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print(f"model=mutex threads={args.threads} increments={args.increments} counter={gl_num} "
          f"expected={args.threads * args.increments} elapsed_s={time.perf_counter() - start:.3f}")
