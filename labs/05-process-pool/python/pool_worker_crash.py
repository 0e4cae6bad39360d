#!/usr/bin/env python3
"""A task that kills its own worker, in CPython's Pool (lab 05).

Task 2 sends its worker SIGKILL. CPython's Pool starts a new worker but never
learns that task 2 was lost: its get() waits forever (CPython gh-66587), and
so would close() + join(). Run it with a timeout:

    timeout 10 python3 labs/05-process-pool/python/pool_worker_crash.py

or give --get-timeout S to stop waiting for each result after S seconds.
"""
import os
import pathlib
import signal
import sys
import time
from multiprocessing import Pool, TimeoutError

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "pycommon"))
from labargs import one_line_parser  # noqa: E402


def task(i):
    if i == 2:
        os.kill(os.getpid(), signal.SIGKILL)  # this worker dies here, mid-task
    time.sleep(0.2)
    return i * 10


if __name__ == "__main__":
    parser = one_line_parser("Lab 05: a task kills its worker; CPython's pool waits for it forever.")
    parser.add_argument("--get-timeout", type=float, default=None,
                        help="seconds to wait for each result (default: forever, as CPython's get())")
    args = parser.parse_args()
    start = time.perf_counter()
    pool = Pool(2)
    results = [pool.apply_async(task, (i,)) for i in range(6)]
    ok = hung = 0
    for i, r in enumerate(results):
        try:
            print(f"task {i}: {r.get(args.get_timeout)}", flush=True)
            ok += 1
        except TimeoutError:
            print(f"task {i}: no result after {args.get_timeout} s: the pool never noticed its worker died",
                  flush=True)
            hung += 1
    pool.terminate()  # close() + join() would wait for task 2 forever
    print(f"model=pool-crash tasks=6 ok={ok} failed=0 hung={hung} elapsed_s={time.perf_counter() - start:.3f}")
