#!/usr/bin/env python3
"""Checks of what the labs teach by *how* their programs behave (ctest, tests/labs.cmake).

    lab_check.py flushed --gap S -- CMD...
        run CMD with stdout a pipe and require its first line to arrive at
        least S seconds before the end of its output: a program that buffers
        its lines into the pipe delivers them all at once when it ends
    lab_check.py whole-lines --line REGEX --runs N -- CMD...
        run CMD N times with Python's output unbuffered (PYTHONUNBUFFERED=1,
        where every write reaches the pipe at once) and require every line
        but the last two (the summary) to match REGEX: lines that processes
        write at the same time must not cut into each other
    lab_check.py thread-limits BIN_DIR [--sanitizer NAME]
        run threads-threaded under limits imposed for real and require the
        one-line errors to name the call and the limits, with their values
"""
import argparse
import os
import pathlib
import re
import shutil
import subprocess
import sys
import time

from check import spare_uid  # tests/check.py, beside this file

TIMEOUT_S = 120
failures = []


def fail(message):
    failures.append(message)
    print(f"FAIL: {message}", file=sys.stderr)


def lab_env():
    """The environment a student has: Python's output buffered as usual."""
    env = dict(os.environ)
    env.pop("PYTHONUNBUFFERED", None)
    return env


def cmd_flushed(args):
    start = time.monotonic()
    proc = subprocess.Popen(args.cmd, stdout=subprocess.PIPE, env=lab_env())
    arrivals = []
    for line in proc.stdout:  # binary mode: each line as soon as it is in the pipe
        arrivals.append((time.monotonic() - start, line.decode(errors="replace").rstrip("\n")))
    end = time.monotonic() - start
    status = proc.wait(timeout=TIMEOUT_S)
    for at, line in arrivals:
        print(f"{at:7.3f} s  {line}")
    print(f"{end:7.3f} s  (end of output, exit status {status})")
    if status != 0:
        fail(f"exit status {status}, expected 0")
    if not arrivals:
        fail("no output")
    elif end - arrivals[0][0] < args.gap:
        fail(f"the first line arrived {end - arrivals[0][0]:.3f} s before the end of the output, expected at least "
             f"{args.gap} s: the program does not flush its lines into a pipe")


def cmd_whole_lines(args):
    env = dict(lab_env(), PYTHONUNBUFFERED="1")
    pattern = re.compile(args.line)
    for _ in range(args.runs):
        result = subprocess.run(args.cmd, capture_output=True, text=True, timeout=TIMEOUT_S, env=env)
        if result.returncode != 0:
            fail(f"exit status {result.returncode}, expected 0: {result.stderr}")
            return
        cut = [line for line in result.stdout.splitlines()[:-2] if not pattern.fullmatch(line)]
        if cut:
            print(result.stdout)
            fail(f"lines cut into each other: {cut}")
            return
    print(f"{args.runs} runs, every line whole")


def read_proc(path):
    return pathlib.Path(path).read_text().split()[0]


def threads_of_user(uid):
    total = 0
    for status in pathlib.Path("/proc").glob("[0-9]*/status"):
        try:
            text = status.read_text()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
        if int(fields["Uid"].split()[0]) == uid:
            total += int(fields["Threads"])
    return total


def run(cmd):
    print("$ " + " ".join(cmd))
    try:
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT_S, env=lab_env())
    except subprocess.TimeoutExpired:
        fail(f"{' '.join(cmd)}: still running after {TIMEOUT_S} s")
        sys.exit(1)
    sys.stdout.write(result.stdout[-2000:])
    sys.stdout.write(result.stderr)
    return result


def one_error_line(result, status, what):
    """The single stderr line of `result`, which must have exited with `status`."""
    lines = result.stderr.splitlines()
    if result.returncode != status:
        fail(f"{what}: exit status {result.returncode}, expected {status}")
    if len(lines) != 1:
        fail(f"{what}: {len(lines)} lines on stderr, expected one")
        return ""
    return lines[0]


def check_names_limits(line, what, nproc):
    wants = [f"vm.max_map_count={read_proc('/proc/sys/vm/max_map_count')} (",
             f"kernel.threads-max={read_proc('/proc/sys/kernel/threads-max')} (",
             f"kernel.pid_max={read_proc('/proc/sys/kernel/pid_max')} (",
             f"ulimit -u={nproc} (reached: "]
    for want in wants:
        if want not in line:
            fail(f"{what}: the error does not say '{want}...': {line}")


def check_nproc(bin_dir):
    """More running threads than RLIMIT_NPROC allows: pthread_create fails with EAGAIN.

    Root is exempt from RLIMIT_NPROC, so as root the program runs as a spare
    uid (setpriv), one that no other process uses: under a shared one
    (nobody), another test running at once would change the count the limit
    is sized from. Another user's limit applies to that user itself.
    """
    threaded = str(bin_dir / "threads-threaded")
    if os.getuid() == 0:
        uid = spare_uid()
        as_user = ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "--"]
        if not shutil.which("setpriv"):
            fail("setpriv (util-linux) is needed to run a program as another uid")
            return
    else:
        uid, as_user = os.getuid(), []
    nproc = threads_of_user(uid) + 20
    # 60 threads that each sleep 0.5 s: the 21st or so cannot start.
    result = run(["prlimit", f"--nproc={nproc}:{nproc}"] + as_user + [threaded, "--tasks", "60", "--sleep-ms", "500"])
    what = f"threads-threaded under ulimit -u {nproc}"
    line = one_error_line(result, 1, what)
    prefix = "error: pthread_create (std::thread): Resource temporarily unavailable; this process has "
    if not line.startswith(prefix):
        fail(f"{what}: the error does not start with '{prefix}': {line}")
    check_names_limits(line, what, nproc)
    if not re.search(r"\d+ threads of uid \d+; RLIMIT_NPROC", line):
        fail(f"{what}: the error does not count the user's threads: {line}")


def check_help_range(bin_dir):
    """--help's range for --tasks is what this machine allows, and says why."""
    threaded = str(bin_dir / "threads-threaded")
    help_text = run([threaded, "--help"]).stdout
    m = re.search(r"--tasks INT:\[1, (\d+)\]", help_text)
    if not m:
        fail(f"threads-threaded --help shows no range for --tasks: {help_text}")
        return
    upper = int(m.group(1))
    max_map_count = int(read_proc("/proc/sys/vm/max_map_count"))
    if max_map_count // 2 < 100_000:
        if not max_map_count // 2 - 500 < upper < max_map_count // 2:
            fail(f"--tasks is bounded by {upper}, expected a little under vm.max_map_count/2 = {max_map_count // 2}")
        if f"vm.max_map_count={max_map_count} memory mappings" not in " ".join(help_text.split()):
            fail(f"threads-threaded --help does not say that vm.max_map_count={max_map_count} bounds --tasks")
    # The bound counts this process's memory mappings, which differ by one or
    # two from run to run (address randomisation decides which neighbouring
    # mappings the kernel merges): --help and a later run may disagree by a
    # few (CI saw 32710 then 32709), so ask for a little more than the bound.
    over = upper + 16
    line = one_error_line(run([threaded, "--tasks", str(over)]), 2, f"threads-threaded --tasks {over}")
    m = re.search(rf"{over} is not in \[1, (\d+)\]", line)
    if not m or abs(int(m.group(1)) - upper) > 8:
        fail(f"threads-threaded --tasks {over}: the error does not give the range (about {upper}): {line}")


def check_address_space(bin_dir):
    """Under `ulimit -v` the range shrinks to the stacks that fit, and --help says so."""
    threaded = str(bin_dir / "threads-threaded")
    limit_kib = 600 * 1024
    result = run(["prlimit", f"--as={limit_kib * 1024}", threaded, "--help"])
    m = re.search(r"--tasks INT:\[1, (\d+)\]", result.stdout)
    stack_kib = int(subprocess.run(["sh", "-c", "ulimit -s"], capture_output=True, text=True).stdout.strip())
    if not m:
        fail(f"threads-threaded --help under ulimit -v shows no range for --tasks: {result.stdout}")
    elif not 0 < int(m.group(1)) <= limit_kib // stack_kib:
        fail(f"under ulimit -v {limit_kib}, --tasks is bounded by {m.group(1)}: more {stack_kib} KiB stacks than fit")
    elif f"ulimit -v allows this process {limit_kib} KiB" not in " ".join(result.stdout.split()):
        fail("threads-threaded --help under ulimit -v does not name it")


def cmd_thread_limits(args):
    bin_dir = pathlib.Path(args.bin_dir)
    check_nproc(bin_dir)
    # AddressSanitizer and ThreadSanitizer reserve terabytes of address space
    # (no ulimit -v there) and map more per thread than a plain build, so the
    # machine's bound on --tasks is checked in the plain build only: under
    # ASan, `--tasks <bound + 1>` ran into the mapping limit (CI, 2026-11-23).
    if not args.sanitizer:
        check_help_range(bin_dir)
        check_address_space(bin_dir)


def main():
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("flushed")
    p.add_argument("--gap", type=float, required=True)
    p.add_argument("cmd", nargs="+")
    p = sub.add_parser("whole-lines")
    p.add_argument("--line", required=True)
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("cmd", nargs="+")
    p = sub.add_parser("thread-limits")
    p.add_argument("bin_dir")
    p.add_argument("--sanitizer", default="")
    args = parser.parse_args()
    {"flushed": cmd_flushed, "whole-lines": cmd_whole_lines, "thread-limits": cmd_thread_limits}[args.command](args)
    if failures:
        print(f"{len(failures)} check(s) failed", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
