#!/usr/bin/env python3
"""The seed's Array('i', [11, 22, 33, 44]) in Python 3 (lab 04).

Only changes from the seed: print() is a function, the start method is
pinned to fork, the flag, the parent's view and the summary line at the end.
"""
import multiprocessing
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "pycommon"))
from labargs import one_line_parser, bounded_int  # noqa: E402

# The children must inherit `temp` by fork, as on the seed's Linux. Python
# 3.14 makes forkserver the default: its children import this file afresh
# and would each write into an Array of their own.
ctx = multiprocessing.get_context('fork')
temp = ctx.Array('i', [11, 22, 33, 44])


def Foo(i):
    temp[i] = 100 + i
    for item in temp:
        print(i, '----->', item)


if __name__ == "__main__":
    parser = one_line_parser("Lab 04: children write into a shared array; everyone sees the writes.")
    parser.add_argument("--processes", type=bounded_int(4), default=2)
    args = parser.parse_args()
    for i in range(args.processes):
        p = ctx.Process(target=Foo, args=(i,))
        p.start()
        p.join()
    seen = list(temp)
    print("parent sees", seen)
    print(f"model=shared-array processes={args.processes} parent_sees={','.join(map(str, seen))}")
