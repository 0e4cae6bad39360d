"""Lab 03's exercises and their checks (scripts/grade 03).

None of them runs under ThreadSanitizer: they fork (docs/DESIGN.md). The
zombie checks look at the process table while the program runs: a watcher
thread of the grader samples the program's children in /proc every few
milliseconds (see Watch) while g.run() waits for the program.
"""
import os
import re
import threading
import time

from gradelib import Exercise, Fail, children_of, process_state

# Lab programs a check runs as a baseline (built beside the exercises).
LAB_PROGRAMS = ["fork-forked"]


# --- watching the process table -------------------------------------------------------

class Watch:
    """What a watcher saw of the program's children while it ran: when each
    one was first and last seen a zombie, and the most seen running at once.

    The program is the grader's one child that is not a zombie (g.run starts
    it; nothing else runs meanwhile); its children are listed in
    /proc/<pid>/task/*/children, zombies included until they are reaped."""

    def __init__(self, every=0.003):
        self.every = every
        self.zombie_seen = {}          # pid -> [first, last] time seen as a zombie
        self.most_running = 0
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def _watch(self):
        me = os.getpid()
        while not self._stop.is_set():
            now = time.monotonic()
            for program in children_of(me):
                if process_state(program) in (None, "Z"):
                    continue
                running = 0
                for kid in children_of(program):
                    state = process_state(kid)
                    if state == "Z":
                        self.zombie_seen.setdefault(kid, [now, now])[1] = now
                    elif state is not None:
                        running += 1
                self.most_running = max(self.most_running, running)
            self.samples += 1
            time.sleep(self.every)

    def longest_zombie(self):
        """(pid, seconds) of the child seen a zombie the longest, or (None, 0)."""
        if not self.zombie_seen:
            return None, 0.0
        pid, (first, last) = max(self.zombie_seen.items(), key=lambda kv: kv[1][1] - kv[1][0])
        return pid, last - first


def run_watched(g, args, *, timeout):
    """g.run(args) while a Watch samples the process table; (Result, Watch)."""
    watch = Watch()
    watch._thread.start()
    try:
        r = g.run(args, timeout=timeout)
    finally:
        watch._stop.set()
        watch._thread.join()
    return r, watch


def no_lasting_zombie(watch, most_ms, when):
    pid, seconds = watch.longest_zombie()
    if seconds * 1000 > most_ms:
        raise Fail(f"{len(watch.zombie_seen)} child(ren) were zombies {when}; child {pid} stayed one for "
                   f"{seconds * 1000:.0f} ms (at most {most_ms} ms): reap each child as soon as it ends")


def summary(r, model):
    line = next((x for x in r.lines() if x.startswith(f"model={model} ")), None)
    if line is None:
        raise Fail(f"no summary line 'model={model} ...' in its output")
    return dict(kv.split("=", 1) for kv in line.split() if "=" in kv)


# --- 03/reap -------------------------------------------------------------------------

reap = Exercise(
    "reap", "Reap every child", minutes=10,
    seed="multiprocessing: Process(target=foo, args=(i,)) x 10, started and never joined",
    hint="""waitpid(pid, &status, 0) waits for that child and reaps it: call it once for each pid in
pids, before the parent's other work. WIFEXITED(status) tells that the child exited,
WEXITSTATUS(status) with which status (0..255). A child that is never waited for stays a
zombie (state Z in /proc, <defunct> in ps) until its parent ends; zombies.cpp shows one.
Reaping after the other work is too late: the grader looks while the parent lingers.""")


def reap_lines(r, processes):
    said = {int(m.group(1)): int(m.group(2))
            for m in re.finditer(r"^child (\d+) \(pid (\d+)\) says hi$", r.stdout, re.M)}
    if sorted(said) != list(range(processes)):
        raise Fail(f"expected a 'child i (pid P) says hi' line for each child 0..{processes - 1}, got {sorted(said)}")
    reaped = [(int(m.group(1)), int(m.group(2)), int(m.group(3))) for m in
              re.finditer(r"^reaped child (\d+) \(pid (\d+)\): exit status (\d+)$", r.stdout, re.M)]
    if sorted(i for i, _, _ in reaped) != list(range(processes)):
        raise Fail(f"expected one 'reaped child i (pid P): exit status S' line for each child 0..{processes - 1}, "
                   f"got {sorted(i for i, _, _ in reaped)}")
    for i, pid, status in reaped:
        if pid != said[i]:
            raise Fail(f"child {i} said it was pid {said[i]}, the parent reaped it as pid {pid}")
        if status != i:
            raise Fail(f"child {i} leaves with _exit({i}); the parent reported exit status {status}")
    s = summary(r, "reap")
    if s.get("reaped") != str(processes):
        raise Fail(f"the summary says reaped={s.get('reaped')}, expected {processes}")


@reap.check("every child reaped, with its pid and exit status", points=5)
def _(g):
    r = g.run(["--processes", "5", "--linger-ms", "0"], timeout=10).expect_exit(0)
    reap_lines(r, 5)


@reap.check("no zombie while the parent goes on working (/proc watched)", points=5)
def _(g):
    r, watch = run_watched(g, ["--processes", "5", "--linger-ms", "400"], timeout=10)
    no_lasting_zombie(watch, 150, "while the parent lingered")
    r.expect_exit(0)
    reap_lines(r, 5)


# --- 03/send_back --------------------------------------------------------------------

send_back = Exercise(
    "send_back", "Bring the children's numbers back to the parent", minutes=25,
    seed="multiprocessing: sharing data (li.append stays in each child; Array, Manager().dict())",
    hint="""A pipe: make one before starting the children (pipe()), give each child its write end
(set_pass_fds({fd}) on the Process before start(), and pass fd to foo), and let foo write
li's bytes to it: in pieces of at most PIPE_BUF bytes (4096 on Linux), as such a write()
is never mixed with another child's and 4096 is a whole number of ints. The parent closes
its own write end (or it never sees end-of-file), then reads until read() returns 0, and
only then joins: joined first, children block writing into a full pipe (it holds 64 KiB)
while the parent waits for them to end. Or give each child a slice of a
conclab::SharedArray<int> (lab 04) and copy it into li after join().""")


def hangs(r, why):
    """r.expect_exit(0), with `why` added when the grader had to kill it."""
    if r.problem and r.problem.startswith("still running"):
        raise Fail(f"{r.problem}: {why}")
    return r.expect_exit(0)


def send_back_check(g, processes, draws):
    r = hangs(g.run(["--processes", str(processes), "--draws", str(draws)], timeout=5),
              "do the children wait to write into a full pipe while the parent waits for them in join()?")
    sums = {int(m.group(1)): (int(m.group(2)), int(m.group(3)))
            for m in re.finditer(r"^child (\d+) drew (\d+) numbers, sum (\d+)$", r.stdout, re.M)}
    if sorted(sums) != list(range(processes)):
        raise Fail(f"expected a 'child i drew N numbers, sum S' line for each child 0..{processes - 1}, "
                   f"got {sorted(sums)}")
    if any(n != draws for n, _ in sums.values()):
        raise Fail(f"every child should draw {draws} numbers: {sums}")
    count, total = _parent(r)
    want = sum(s for _, s in sums.values())
    if count != processes * draws or total != want:
        raise Fail(f"the parent has {count} numbers summing to {total}; the children drew "
                   f"{processes * draws} summing to {want}")
    s = summary(r, "send-back")
    if s.get("parent_list_size") != str(processes * draws):
        raise Fail(f"the summary says parent_list_size={s.get('parent_list_size')}, expected {processes * draws}")


def _parent(r):
    m = re.search(r"^parent has (\d+) numbers, sum (\d+)$", r.stdout, re.M)
    if not m:
        raise Fail("no 'parent has N numbers, sum S' line in its output")
    return int(m.group(1)), int(m.group(2))


@send_back.check("the parent's list holds what 10 children drew", points=5)
def _(g):
    send_back_check(g, 10, 1)


@send_back.check("4 children x 20,000 numbers: more than a pipe holds, and no deadlock", points=5)
def _(g):
    send_back_check(g, 4, 20000)


# --- 03/reap_early -------------------------------------------------------------------

reap_early = Exercise(
    "reap_early", "Reap each child as soon as it ends", minutes=30,
    seed="socketserver: ForkingMixIn, a child per request (collect_children() reaps them)",
    hint="""The kernel sends the parent SIGCHLD whenever a child ends. Install a handler with
sigaction() (sa_flags = SA_RESTART, so that the sleeps and writes it interrupts go on)
that reaps every child that has ended: while (waitpid(-1, nullptr, WNOHANG) > 0) count.
A handler may only call async-signal-safe functions (waitpid is one; fmt::print is not)
and touch a lock-free std::atomic or a volatile std::sig_atomic_t; save and restore errno
in it. Reaping with WNOHANG before each fork (what ForkingMixIn does) is not enough: the
children that end while the parent idles stay zombies. signal(SIGCHLD, SIG_IGN) makes
the kernel reap them, but then nobody can count them (or learn how they ended).""")


def reap_early_check(g, args, children, when):
    r, watch = run_watched(g, args, timeout=15)
    r.expect_exit(0)
    s = summary(r, "reap-early")
    if s.get("reaped") != str(children):
        raise Fail(f"the summary says reaped={s.get('reaped')}, expected {children}: count every child you reap")
    if watch.most_running < 2:
        raise Fail(f"at most {watch.most_running} child was seen running at a time (in {watch.samples} looks): "
                   "the children must work at once, as a forking server's do; do not wait for each in turn")
    no_lasting_zombie(watch, 150, when)


@reap_early.check("no child stays a zombie while the parent forks (20 requests, /proc watched)", points=5)
def _(g):
    reap_early_check(g, ["--children", "20", "--every-ms", "30", "--child-ms", "70", "--idle-ms", "0"], 20,
                     "while the parent forked")


@reap_early.check("nor while the parent idles after its last request (/proc watched)", points=10)
def _(g):
    reap_early_check(g, ["--children", "5", "--every-ms", "30", "--child-ms", "100", "--idle-ms", "600"], 5,
                     "while the parent idled")


# --- 03/wait_timeout -----------------------------------------------------------------

wait_timeout = Exercise(
    "wait_timeout", "Wait for the children, with a deadline", minutes=40,
    seed="multiprocessing: Process.join(timeout), exitcode, terminate()",
    hint="""waitpid(-1, &status, WNOHANG) reaps any one child that has ended, or returns 0 at once:
so children are reported in the order they end. To sleep until a child ends or the
deadline comes, block SIGCHLD before forking (sigprocmask(SIG_BLOCK, ...)); then loop:
reap with WNOHANG while it returns a child, and if some are still running, wait for
the next SIGCHLD with sigtimedwait() and what is left of the time (EAGAIN: the time is
up). A pidfd per child and poll() do it too (get it with syscall(SYS_pidfd_open, pid, 0):
glibc 2.36's pidfd_open() does not link from C++). WIFSIGNALED(status) and WTERMSIG(status)
say that a signal killed the child, and which; WEXITSTATUS is only meaningful when
WIFEXITED. At the deadline kill(pid, SIGKILL) each child left, and waitpid() it: a killed
child is a zombie until reaped, like any other.""")


def timeout_lines(r):
    """[(index, pid, how, value)] in the order printed: how is exit, signal or timeout."""
    found = []
    for line in r.lines():
        m = re.match(r"child (\d+) \(pid (\d+)\): (?:exit status (\d+)|killed by signal (\d+)|"
                     r"still running after (\d+) ms: killed)", line.strip())
        if m:
            how, value = next((h, int(v)) for h, v in zip(("exit", "signal", "timeout"), m.groups()[2:]) if v)
            found.append((int(m.group(1)), int(m.group(2)), how, value))
    return found


def expect_report(r, want_ordered, want_timeouts, timeout_ms):
    got = timeout_lines(r)
    indices = sorted(i for i, *_ in got)
    total = len(want_ordered) + len(want_timeouts)
    if indices != list(range(total)):
        raise Fail(f"expected one report line for each child 0..{total - 1}, got children {indices}")
    ended = [(i, how, v) for i, _, how, v in got if how != "timeout"]
    if sorted(ended) != sorted(want_ordered):
        raise Fail(f"expected these children to end, as (child, how, status or signal): {sorted(want_ordered)}; "
                   f"got {sorted(ended)}")
    if ended != want_ordered:
        raise Fail(f"reported in the order {[i for i, *_ in ended]}; they end in the order "
                   f"{[i for i, *_ in want_ordered]}: report each child when it ends")
    late = [(i, v) for i, _, how, v in got if how == "timeout"]
    if sorted(i for i, _ in late) != want_timeouts:
        raise Fail(f"expected children {want_timeouts} to be still running at the deadline; "
                   f"got {sorted(i for i, _ in late)}")
    if any(v != timeout_ms for _, v in late):
        raise Fail(f"'still running after T ms' should say T = --timeout-ms = {timeout_ms}: {late}")
    if [how for *_, how, _ in got][len(ended):] != ["timeout"] * len(late):
        raise Fail("a child was reported as killed at the deadline before one that ended earlier")
    s = summary(r, "wait-timeout")
    want = {"exited": sum(how == "exit" for _, how, _ in want_ordered),
            "signaled": sum(how == "signal" for _, how, _ in want_ordered), "timed_out": len(want_timeouts)}
    if any(s.get(k) != str(v) for k, v in want.items()):
        raise Fail(f"the summary says {', '.join(f'{k}={s.get(k)}' for k in want)}; expected "
                   + ", ".join(f"{k}={v}" for k, v in want.items()))


ENDED = [(2, "exit", 3), (1, "signal", 15), (0, "exit", 0)]  # kPlan's first three, in the order they end


@wait_timeout.check("each child's exit status or signal, in the order they end, done when they are", points=10)
def _(g):
    # 3 children that end after 1, 2, 3 units of 80 ms; a deadline far away.
    base = g.run_lab_program("fork-forked", ["--processes", "3", "--sleep-ms", "240"], timeout=10).expect_exit(0)
    r = g.run(["--children", "3", "--unit-ms", "80", "--timeout-ms", "5000"], timeout=10).expect_exit(0)
    expect_report(r, ENDED, [], 5000)
    ratio = r.seconds / base.seconds
    if ratio > 2.0:
        raise Fail(f"it took {r.seconds:.3f} s, {ratio:.1f}x as long as children sleeping as long "
                   f"({base.seconds:.3f} s, fork-forked): do not wait longer than the children run")


@wait_timeout.check("children still running at the deadline are killed and reaped, on time", points=10)
def _(g):
    base = g.run_lab_program("fork-forked", ["--processes", "6", "--sleep-ms", "500"], timeout=10).expect_exit(0)
    r = hangs(g.run(["--children", "6", "--unit-ms", "50", "--timeout-ms", "500"], timeout=3),
              "children 3, 4 and 5 never end: stop waiting for them at --timeout-ms 500, kill them and reap them")
    expect_report(r, ENDED, [3, 4, 5], 500)
    ratio = r.seconds / base.seconds
    if ratio > 2.0:
        raise Fail(f"it took {r.seconds:.3f} s, {ratio:.2f}x the {base.seconds:.3f} s of children sleeping "
                   "until the deadline (fork-forked): the deadline is for the whole wait, not for each child")
    if ratio < 0.5:
        raise Fail(f"it took {r.seconds:.3f} s, {ratio:.2f}x the {base.seconds:.3f} s of children sleeping "
                   "until the deadline (fork-forked): it killed the children before the deadline")


EXERCISES = [reap, send_back, reap_early, wait_timeout]
