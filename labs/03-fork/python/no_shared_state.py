#!/usr/bin/env python3
"""The seed's li.append demo in Python 3: processes share nothing (lab 03).

Only changes from the seed: each child writes its line in one piece (below),
the flag, join() on every process (the seed printed 'ending' before its
children had run) and the summary line.
"""
import pathlib
import sys
from multiprocessing import Process

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "pycommon"))
from labargs import one_line_parser, bounded_int  # noqa: E402

li = []


def foo(i):
    li.append(i)
    # The seed's print('say hi', li) writes 'say hi', ' ', the list and the
    # newline one after the other. When stdout is unbuffered (python3 -u,
    # PYTHONUNBUFFERED=1) each piece is a write of its own, and ten children
    # writing at once cut into each other's lines: "say hisay hi [3]". One
    # write of the whole line keeps it whole.
    sys.stdout.write(f"say hi {li}\n")


if __name__ == "__main__":
    parser = one_line_parser("Lab 03: children append to a global list; the parent's stays empty.")
    parser.add_argument("--processes", type=bounded_int(1000), default=10)
    args = parser.parse_args()
    children = []
    for i in range(args.processes):
        p = Process(target=foo, args=(i,))
        p.start()
        children.append(p)
    for p in children:
        p.join()
    print('ending', li)
    print(f"model=no-shared-state processes={args.processes} parent_list_size={len(li)} expected=0")
