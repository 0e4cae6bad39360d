#!/usr/bin/env python3
"""The seed's Pool(5) program in Python 3 (lab 05).

Only changes from the seed: print() is a function, the flags, the apply()
line uncommented, and the summary line at the end.
"""
import pathlib
import sys
import time
from multiprocessing import Pool

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "pycommon"))
from labargs import one_line_parser, bounded_int  # noqa: E402

callbacks = 0


def Foo(i, sleep_s=2):
    time.sleep(sleep_s)
    return i + 100


def Bar(arg):
    global callbacks
    print(arg)
    callbacks += 1


if __name__ == "__main__":
    parser = one_line_parser("Lab 05: the seed's process pool: apply, apply_async, callbacks, close, join.")
    parser.add_argument("--processes", type=bounded_int(100), default=5)
    parser.add_argument("--tasks", type=bounded_int(100_000), default=10)
    parser.add_argument("--sleep-ms", type=bounded_int(3_600_000), default=2000)
    args = parser.parse_args()
    sleep_s = args.sleep_ms / 1000
    start = time.perf_counter()
    pool = Pool(args.processes)
    print(pool.apply(Foo, (1, sleep_s)))
    print(pool.apply_async(func=Foo, args=(1, sleep_s)).get())
    for i in range(args.tasks):
        pool.apply_async(func=Foo, args=(i, sleep_s), callback=Bar)
    print('end')
    pool.close()
    pool.join()
    print(f"model=process-pool processes={args.processes} tasks={args.tasks} sleep_ms={args.sleep_ms} "
          f"callbacks={callbacks} elapsed_s={time.perf_counter() - start:.3f}")
