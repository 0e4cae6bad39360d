#!/usr/bin/env python3
"""The RLock around the increment only, the sleep outside it (lab 02, step 5, Python)."""
import pathlib
import sys
import threading
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "pycommon"))
from labargs import worker_args  # noqa: E402

gl_num = 0

lock = threading.RLock()


def Func(sleep_s):
    global gl_num
    with lock:
        gl_num += 1
        mine = gl_num
    time.sleep(sleep_s)
    print(mine)


if __name__ == "__main__":
    args = worker_args("Lab 02: the RLock counter, sleeping outside the lock.", tasks=10)
    start = time.perf_counter()
    threads = []
    for i in range(args.tasks):
        t = threading.Thread(target=Func, args=(args.sleep_ms / 1000,))
        t.start()
        threads.append(t)
    for t in threads:
        t.join()
    print(f"model=rlock-outside tasks={args.tasks} sleep_ms={args.sleep_ms} counter={gl_num} "
          f"expected={args.tasks} elapsed_s={time.perf_counter() - start:.3f}")
