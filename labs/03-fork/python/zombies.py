#!/usr/bin/env python3
"""Make a zombie, look at it with ps, reap it (lab 03, Python).

os.fork() a child that exits at once; os.waitid(..., WNOWAIT) waits for it
without reaping, so ps shows it as Z <defunct>; os.waitpid() reaps it.
"""
import os
import pathlib
import subprocess
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "pycommon"))
from labargs import one_line_parser  # noqa: E402


def state_of(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return "-"


def show(pid):
    sys.stdout.flush()
    subprocess.run(["ps", "-o", "pid,ppid,stat,args", "-p", str(pid)])


if __name__ == "__main__":
    one_line_parser("Lab 03: make a zombie, look at it, reap it.").parse_args()
    sys.stdout.flush()
    pid = os.fork()
    if pid == 0:
        os._exit(7)
    info = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)
    before = state_of(pid)
    print(f"child {pid} has exited with status {info.si_status} but is not reaped: state {before}")
    show(pid)
    _, status = os.waitpid(pid, 0)
    after = state_of(pid)
    print(f"reaped with waitpid: exit status {os.WEXITSTATUS(status)}, state now {after}")
    show(pid)
    print(f"model=zombies state_before={before} state_after={after} exit_status={os.WEXITSTATUS(status)}")
