#!/usr/bin/env python3
"""The seed's Manager().dict() in Python 3 (lab 04).

Only changes from the seed: print() is a function (values() printed as a
list), the Manager started under __main__, the start method pinned to fork
(the seed's, on Linux; Python 3.14 defaults to forkserver), the flag and the
summary line.
"""
import multiprocessing
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "pycommon"))
from labargs import one_line_parser, bounded_int  # noqa: E402


def Foo(dic, i):
    dic[i] = 100 + i
    print(list(dic.values()))


if __name__ == "__main__":
    parser = one_line_parser("Lab 04: children set keys of a shared dict; everyone sees them.")
    parser.add_argument("--processes", type=bounded_int(100), default=2)
    args = parser.parse_args()
    ctx = multiprocessing.get_context('fork')
    with ctx.Manager() as manage:
        dic = manage.dict()
        for i in range(args.processes):
            p = ctx.Process(target=Foo, args=(dic, i))
            p.start()
            p.join()
        print("parent sees", list(dic.values()))
        print(f"model=shared-dict processes={args.processes} entries={len(dic)} expected={args.processes}")
