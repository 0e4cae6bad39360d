"""gradelib — what scripts/grade and each lab's exercises/grade.py share.

A lab's exercises/grade.py lists its exercises:

    from gradelib import Exercise, Fail

    threaded = Exercise("threaded", "Run each worker in its own thread",
                        minutes=15, seed="...", hint="...")

    @threaded.check("the workers run at once", points=5)
    def _(g):
        r = g.run(["--tasks", "5", "--sleep-ms", "200"])
        r.expect_exit(0)
        if ...: raise Fail("why, in words a student can act on")

    EXERCISES = [threaded]

A check gets a Grading `g`: g.run() runs the exercise's program (the
student's file, or the reference solution, the starter with
solutions/<name>.diff applied, under --solutions) in a process group of its
own, with a timeout, and cleans up after it: processes left running, zombies
it never reaped, shared-memory segments it left. Result.problem names them,
and r.expect_exit() / r.expect_clean() fail the check on it (a check that
calls neither lets them pass). g.run(..., tsan=True)
runs the ThreadSanitizer build: a race report fails the check and shows it.
"""
from __future__ import annotations

import ctypes
import dataclasses
import os
import re
import selectors
import signal
import subprocess
import time
from pathlib import Path
from typing import Callable

SHM = Path("/dev/shm")
OUTPUT_CAP = 1 << 20  # bytes of stdout/stderr kept per run; more is dropped and said so
MAX_PROCESSES = 200   # processes a run may have at once before it counts as a fork bomb


class Fail(Exception):
    """A check failed; the message says why, for the student."""


@dataclasses.dataclass
class Check:
    name: str
    points: int
    fn: Callable[["Grading"], None]


@dataclasses.dataclass
class Exercise:
    name: str            # its file is exercises/<name>.cpp, its solution solutions/<name>.diff
    title: str
    minutes: int         # how long a student takes, for labs/TEACHING.md
    seed: str            # the seed section it maps to
    hint: str
    tsan: bool = False   # its checks run the ThreadSanitizer build too
    checks: list[Check] = dataclasses.field(default_factory=list)

    def check(self, name: str, points: int):
        def register(fn):
            self.checks.append(Check(name, points, fn))
            return fn
        return register

    @property
    def points(self) -> int:
        return sum(c.points for c in self.checks)


# --- running a program and cleaning up after it -----------------------------------------

_libc = ctypes.CDLL(None, use_errno=True)
PR_SET_CHILD_SUBREAPER = 36


def become_subreaper() -> None:
    """Orphans of the programs we run are re-parented to us, not to init:
    so a child a program never reaped, or left running, is ours to see."""
    _libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


def children_of(pid: int) -> list[int]:
    """Processes whose parent is `pid` (from /proc: every thread's children, zombies too)."""
    found = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            try:
                found += [int(c) for c in Path(f"/proc/{pid}/task/{task}/children").read_text().split()]
            except OSError:
                pass
    except OSError:
        pass
    return found


def process_state(pid: int) -> str | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat[stat.rindex(")") + 2]


def _group_size(pgid: int) -> int:
    n = 0
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            fields = stat[stat.rindex(")") + 2:].split()
            if int(fields[2]) == pgid and fields[0] != "Z":
                n += 1
    return n


def _kill_group(pgid: int) -> None:
    # A fork bomb forks while we kill: repeat until the group is empty.
    for _ in range(100):
        try:
            os.killpg(pgid, signal.SIGKILL)
        except ProcessLookupError:
            return
        time.sleep(0.01)
        if _group_size(pgid) == 0:  # only zombies left: reaped by the caller
            return


class _PidsCgroup:
    """A pids cgroup of its own for one run, where the system lets us make
    one (cgroup v1's pids controller, or v2 with pids enabled): the kernel
    refuses fork beyond `limit` processes, and every process of the run is
    found and killed through it, even one that left the process group."""

    def __init__(self, tag: str, limit: int):
        self.path = None
        for base in (Path("/sys/fs/cgroup/pids"), Path("/sys/fs/cgroup")):
            if (base / "cgroup.procs").exists() and os.access(base, os.W_OK):
                try:
                    path = base / tag
                    path.mkdir()
                    if not (path / "pids.max").exists():
                        path.rmdir()
                        continue
                    (path / "pids.max").write_text(str(limit))
                    self.path = path
                    return
                except OSError:
                    continue

    def count(self) -> int | None:
        if not self.path:
            return None
        try:
            return int((self.path / "pids.current").read_text())
        except (OSError, ValueError):
            return None

    def hit_limit(self) -> bool:
        if not self.path:
            return False
        try:
            return any(line.startswith("max ") and int(line.split()[1]) > 0
                       for line in (self.path / "pids.events").read_text().splitlines())
        except (OSError, ValueError):
            return False

    def kill_all(self) -> None:
        if not self.path:
            return
        for _ in range(200):
            try:
                pids = [int(p) for p in (self.path / "cgroup.procs").read_text().split()]
            except OSError:
                return
            if not pids:
                return
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.01)

    def remove(self) -> None:
        if self.path:
            self.kill_all()
            for _ in range(100):
                try:
                    self.path.rmdir()
                    return
                except OSError:
                    time.sleep(0.02)


def _shm_names() -> set[str]:
    try:
        return set(os.listdir(SHM))
    except OSError:
        return set()


def _new_segments(before: set[str]) -> list[str]:
    """Segments in /dev/shm that were not there before the run and are still
    there a moment after it: what the run left. (conclab's own segments lose
    their name as soon as they are mapped, so a passing one is not counted;
    the grader's tests run alone, so no other program's segment is.)"""
    new = _shm_names() - before
    if not new:
        return []
    time.sleep(0.05)
    uid = os.getuid()
    left = []
    for name in sorted(new & _shm_names()):
        try:
            if (SHM / name).stat().st_uid == uid:
                left.append(name)
        except OSError:
            pass
    return left


@dataclasses.dataclass
class Result:
    args: list[str]
    returncode: int | None   # None: killed by the grader (timeout or fork bomb)
    stdout: str
    stderr: str
    seconds: float
    problem: str | None      # what the grader had to clean up, or why it killed the run

    def lines(self) -> list[str]:
        return self.stdout.splitlines()

    def expect_exit(self, code: int = 0) -> "Result":
        if self.problem:
            raise Fail(self.problem)
        if self.returncode != code:
            raise Fail(f"exit status {_describe_status(self.returncode)}, expected {code}" + _tail(self.stderr))
        return self

    def expect_clean(self) -> "Result":
        """Only that the grader had nothing to clean up and no timeout."""
        if self.problem:
            raise Fail(self.problem)
        return self


def _describe_status(code: int | None) -> str:
    if code is None:
        return "none (killed)"
    if code < 0:
        try:
            return f"killed by signal {-code} ({signal.Signals(-code).name})"
        except ValueError:
            return f"killed by signal {-code}"
    return str(code)


def clip(line: str, most: int = 200) -> str:
    return line if len(line) <= most else line[:most] + f"... [{len(line) - most} more characters]"


def _tail(text: str, lines: int = 8) -> str:
    text = text.strip()
    if not text:
        return ""
    return "; its stderr ends:\n      " + "\n      ".join(clip(line) for line in text.splitlines()[-lines:])


def run_program(program: Path, args: list[str], *, timeout: float, stdin: str | None = None,
                env: dict[str, str] | None = None, max_processes: int = MAX_PROCESSES) -> Result:
    """Runs `program` in a process group of its own and cleans up after it.

    It is killed, with everything it started, when it runs past `timeout`
    seconds or has more than `max_processes` processes at once. After it ends,
    whatever it left is cleaned up and named in Result.problem: processes
    still running, children it never reaped (zombies), and new
    shared-memory segments it made and did not remove."""
    tag = f"grade{os.getpid()}x{time.monotonic_ns() % 10**9}"
    full_env = dict(os.environ)
    full_env.update(env or {})
    shm_before = _shm_names()
    cgroup = _PidsCgroup(tag, max_processes)
    if cgroup.path:
        full_env["GRADE_CGROUP"] = str(cgroup.path / "cgroup.procs")
    elif os.getuid() != 0:
        # No cgroup, not root: a soft RLIMIT_NPROC stops a fork bomb in the
        # kernel. It counts every thread of this user, so it is set above what
        # the user runs now; the grader's watch of the process group
        # (max_processes) is what reports the bomb.
        full_env["GRADE_NPROC"] = str(_user_threads() + 2 * max_processes + 100)
    # Nothing in Python runs between fork and exec (the grader may have
    # threads, and a forked child of a threaded program may only exec): a
    # shell joins the cgroup, sets the limit and becomes the program.
    wrapper = ('if [ -n "$GRADE_CGROUP" ]; then echo $$ > "$GRADE_CGROUP" || exit 125; fi; '
               'if [ -n "$GRADE_NPROC" ]; then ulimit -Su "$GRADE_NPROC" 2>/dev/null; fi; '
               'unset GRADE_CGROUP GRADE_NPROC; exec "$@"')
    start = time.monotonic()
    proc = subprocess.Popen(["/bin/bash", "-c", wrapper, "grade-run", str(program), *args],
                            stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=full_env, process_group=0)
    pgid = proc.pid
    try:
        out, err, problem = _collect(proc, pgid, stdin, timeout, max_processes, cgroup)
        seconds = time.monotonic() - start
        returncode = proc.returncode if problem is None else None
        if problem is None and cgroup.hit_limit():
            problem = (f"tried to have more than {max_processes} processes (or threads) at once, a fork bomb?: "
                       "refused and killed")
        # First what it left (orphans re-parented to us, running or zombies),
        # then anything else still in its group or cgroup.
        left = _cleanup_descendants()
    finally:
        # Also when the grader itself is interrupted (Ctrl-C, SIGTERM): the
        # program, all it started and its zombies go with it.
        _kill_group(pgid)
        cgroup.kill_all()
        if proc.returncode is None:
            proc.kill()
            proc.wait()
        _cleanup_descendants()
        cgroup.remove()
    if problem is None and left:
        problem = left
    leaked = _new_segments(shm_before)
    for name in leaked:
        try:
            (SHM / name).unlink()
        except OSError:
            pass
    if problem is None and leaked:
        problem = f"left {len(leaked)} shared-memory segment(s) in /dev/shm (removed): {', '.join(leaked[:5])}"
    return Result([str(program), *args], returncode, out, err, seconds, problem)


def _user_threads() -> int:
    """Threads of this user now (RLIMIT_NPROC counts threads, not processes)."""
    uid = os.getuid()
    n = 0
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.stat(f"/proc/{entry}").st_uid == uid:
                    n += len(os.listdir(f"/proc/{entry}/task"))
            except OSError:
                pass
    return n


def _collect(proc: subprocess.Popen, pgid: int, stdin: str | None, timeout: float, max_processes: int,
             cgroup: _PidsCgroup):
    sel = selectors.DefaultSelector()
    bufs = {proc.stdout: bytearray(), proc.stderr: bytearray()}
    dropped = {proc.stdout: 0, proc.stderr: 0}
    for stream in bufs:
        os.set_blocking(stream.fileno(), False)
        sel.register(stream, selectors.EVENT_READ)
    if stdin is not None:
        try:
            proc.stdin.write(stdin.encode())
            proc.stdin.close()
        except (BrokenPipeError, OSError):
            pass
    deadline = time.monotonic() + timeout
    problem = None
    next_count = 0.0
    ended_at = None
    while sel.get_map():
        now = time.monotonic()
        if now >= deadline:
            if _group_size(pgid) > max_processes:  # a bomb that starved the watch below
                problem = f"more than {max_processes} processes at once: killed as a fork bomb"
            else:
                problem = (f"still running after {timeout:g} s: killed "
                           "(does it hang, or wait for something that never comes?)")
            break
        if now >= next_count:
            next_count = now + 0.05
            if cgroup.hit_limit() or (cgroup.path is None and _group_size(pgid) > max_processes):
                problem = f"tried to have more than {max_processes} processes at once: killed as a fork bomb"
                break
        if ended_at is None and proc.poll() is not None:
            ended_at = now
        elif ended_at is not None and now - ended_at > 0.5:
            break  # it ended, but something it started still holds its output open
        for key, _ in sel.select(timeout=min(0.05, deadline - now)):
            try:
                chunk = os.read(key.fileobj.fileno(), 65536)
            except BlockingIOError:
                continue
            if not chunk:
                sel.unregister(key.fileobj)
                continue
            buf = bufs[key.fileobj]
            room = OUTPUT_CAP - len(buf)
            buf += chunk[:max(room, 0)]
            dropped[key.fileobj] += max(len(chunk) - max(room, 0), 0)
    sel.close()
    if problem is not None:
        _kill_group(pgid)
        cgroup.kill_all()
    # The streams closed (or we gave up): wait for the program itself.
    try:
        proc.wait(timeout=max(deadline - time.monotonic(), 0.1) if problem is None else 5)
    except subprocess.TimeoutExpired:
        problem = f"still running after {timeout:g} s (it closed its output): killed"
        _kill_group(pgid)
        proc.wait()
    for stream in bufs:
        stream.close()
    if proc.stdin:
        proc.stdin.close()

    def text(stream):
        s = bufs[stream].decode("utf-8", errors="replace")
        if dropped[stream]:
            s += f"\n[grader: {dropped[stream]} more bytes dropped]\n"
        return s
    return text(proc.stdout), text(proc.stderr), problem


def _cleanup_descendants() -> str | None:
    """Kills and reaps what a finished run left behind: re-parented to us (the
    subreaper) are its orphans, still running or zombies nobody reaped."""
    me = os.getpid()
    running = zombies = 0
    for _ in range(50):
        kids = children_of(me)
        if not kids:
            break
        for pid in kids:
            if process_state(pid) == "Z":
                zombies += 1
            else:
                running += 1
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            try:
                os.waitpid(pid, 0)
            except ChildProcessError:
                pass
    parts = []
    if running:
        parts.append(f"left {running} process(es) running after it ended (killed)")
    if zombies:
        parts.append(f"left {zombies} child process(es) it never reaped (zombies)")
    return "; ".join(parts) or None


# --- what a check sees ---------------------------------------------------------------

class Grading:
    """The context of one exercise's checks: its programs and how to run them."""

    def __init__(self, exercise: Exercise, programs: dict[str, Path], lab_programs: Path, verbose: bool):
        self.exercise = exercise
        self._programs = programs          # "plain" and, for tsan exercises, "tsan"
        self._lab_programs = lab_programs  # the lab's own programs (a baseline for ratios)
        self.verbose = verbose
        self.notes: list[str] = []

    def run(self, args: list[str] | None = None, *, timeout: float = 20, tsan: bool = False,
            stdin: str | None = None, env: dict[str, str] | None = None,
            max_processes: int = MAX_PROCESSES) -> Result:
        program = self._programs["tsan" if tsan else "plain"]
        extra = dict(env or {})
        if tsan:
            extra.setdefault("TSAN_OPTIONS", "halt_on_error=1 exitcode=66 second_deadlock_stack=1")
        r = run_program(program, list(args or []), timeout=timeout, stdin=stdin, env=extra,
                        max_processes=max_processes)
        self._log(r)
        if tsan and ("WARNING: ThreadSanitizer" in r.stderr or r.returncode == 66):
            kind = re.search(r"WARNING: ThreadSanitizer: ([^(\n]+)", r.stderr)
            raise Fail(f"ThreadSanitizer reports a {kind.group(1).strip() if kind else 'problem'}:\n      " +
                       "\n      ".join(_tsan_report(r.stderr)))
        return r

    def run_lab_program(self, name: str, args: list[str] | None = None, *, timeout: float = 60) -> Result:
        """One of the lab's own programs (build/<...>/bin/<name>), for a baseline."""
        r = run_program(self._lab_programs / name, list(args or []), timeout=timeout)
        self._log(r)
        return r

    def _log(self, r: Result) -> None:
        if self.verbose:
            self.notes.append(f"$ {' '.join(r.args)}  ({r.seconds:.3f} s, exit {_describe_status(r.returncode)})")
            self.notes += ["  " + clip(line) for line in (r.stdout + r.stderr).splitlines()[:40]]


def _tsan_report(stderr: str, lines: int = 30) -> list[str]:
    text = stderr.splitlines()
    start = next((i for i, line in enumerate(text) if "WARNING: ThreadSanitizer" in line), 0)
    return [clip(line) for line in text[start:start + lines]]


def summary(r: Result) -> dict[str, str]:
    """The key=value pairs of a program's summary line (the last one starting with model=)."""
    for line in reversed(r.lines()):
        if line.startswith("model="):
            return dict(pair.split("=", 1) for pair in line.split() if "=" in pair)
    raise Fail("no summary line (model=...) in its output")


def integer(fields: dict[str, str], key: str) -> int:
    """The number `key` of a summary line, or Fail."""
    try:
        return int(fields[key])
    except (KeyError, ValueError):
        raise Fail(f"the summary line has no number {key}=...")


def number(pattern: str, text: str, what: str) -> float:
    """The number captured by `pattern` in `text`, or Fail naming `what`."""
    m = re.search(pattern, text)
    if not m:
        raise Fail(f"no {what} in its output (looked for /{pattern}/)")
    return float(m.group(1))


def ratio_at_least(name: str, fast: float, slow: float, least: float) -> None:
    """Passes when slow / fast >= least (both measured in this run)."""
    ratio = slow / fast if fast > 0 else float("inf")
    if ratio < least:
        raise Fail(f"{name}: {ratio:.2f}x, needs at least {least:g}x")


# --- solutions as patches of the starters ------------------------------------------------

def apply_patch(original: str, patch: str) -> str:
    """Applies a unified diff (diff -u starter solution) to `original`.

    Every hunk must match the starter exactly where it says (or anywhere
    after the previous hunk, when lines were added above it); otherwise the
    solution no longer fits its starter, and that is an error to fix."""
    src = original.splitlines(keepends=True)
    out: list[str] = []
    pos = 0
    lines = patch.splitlines(keepends=True)
    i = 0
    while i < len(lines) and not lines[i].startswith("@@"):
        i += 1
    while i < len(lines):
        m = re.match(r"@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@", lines[i])
        if not m:
            raise ValueError(f"line {i + 1} of the patch is not a hunk header: {lines[i]!r}")
        i += 1
        old, new = [], []
        while i < len(lines) and not lines[i].startswith("@@"):
            line = lines[i]
            if line.startswith("\\"):  # "\ No newline at end of file": the files here all end in one
                pass
            elif line[:1] in (" ", "\n"):
                text = line[1:] if line[:1] == " " else line
                old.append(text)
                new.append(text)
            elif line[:1] == "-":
                old.append(line[1:])
            elif line[:1] == "+":
                new.append(line[1:])
            else:
                raise ValueError(f"line {i + 1} of the patch is not part of a hunk: {line!r}")
            i += 1
        start = int(m.group(1)) - 1 if old else int(m.group(1))
        at = next((s for s in [start, *range(pos, len(src) - len(old) + 1)]
                   if s >= pos and src[s:s + len(old)] == old), None)
        if at is None:
            raise ValueError(f"the hunk at line {m.group(1)} does not match the starter")
        out += src[pos:at] + new
        pos = at + len(old)
    out += src[pos:]
    return "".join(out)
