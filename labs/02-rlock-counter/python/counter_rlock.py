#!/usr/bin/env python3
"""The seed's RLock program in Python 3 (lab 02, step 4).

Only changes from the seed: print() is a function, the flags, join() on every
thread and the summary line at the end.
"""
import pathlib
import sys
import threading
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "pycommon"))
from labargs import worker_args  # noqa: E402

gl_num = 0

lock = threading.RLock()


def Func(sleep_s):
    lock.acquire()
    global gl_num
    gl_num += 1
    time.sleep(sleep_s)
    print(gl_num)
    lock.release()


if __name__ == "__main__":
    args = worker_args("Lab 02: the seed's RLock counter.", tasks=10)
    start = time.perf_counter()
    threads = []
    for i in range(args.tasks):
        t = threading.Thread(target=Func, args=(args.sleep_ms / 1000,))
        t.start()
        threads.append(t)
    for t in threads:
        t.join()
    print(f"model=rlock tasks={args.tasks} sleep_ms={args.sleep_ms} counter={gl_num} expected={args.tasks} "
          f"elapsed_s={time.perf_counter() - start:.3f}")
