"""Lab 04's exercises and their checks (scripts/grade 04).

Every program here forks, so nothing runs under ThreadSanitizer (it does not
follow a process across fork). The grader's own cleanup fails a run that
leaves a segment in /dev/shm, a process running or a zombie: 04/no_leak is
graded on the first.
"""
import re

from gradelib import Exercise, Fail, integer, summary

# No lab program is needed as a baseline: the timing check of 04/results
# compares two runs of the exercise itself.
LAB_PROGRAMS = []


def parent_sees(r, processes):
    want = ", ".join(str(100 + i) for i in range(processes))
    if f"parent sees [{want}]" not in r.stdout:
        got = re.search(r"^parent sees .*$", r.stdout, re.M)
        raise Fail(f"expected 'parent sees [{want}]', got {got.group(0) if got else 'no such line'!r}")


# --- 04/counter ----------------------------------------------------------------------

counter = Exercise(
    "counter", "A counter every child adds to", minutes=15,
    seed="003, 扩展:进程 2、进程共享数据: 进程各自持有一份数据 (each its own copy); 方法一 Array and its lock",
    hint="""Make it a conclab::SharedArray<long> counter(1), created before the children start: they
inherit the mapping, so counter[0] is the same memory in every process, and the parent
reads it after joining them all. counter[0] += 1 is a load, an add and a store: two
children can load the same value, and one addition is lost. Take
std::lock_guard guard(counter.get_lock()) around it: a lock that works across processes.""")


def expect_count(r, processes, increments, run=None):
    when = f" (run {run + 1})" if run is not None else ""
    added = sorted(int(m.group(1)) for m in re.finditer(rf"^child (\d+) added {increments}$", r.stdout, re.M))
    if added != list(range(processes)):
        raise Fail(f"expected a line 'child i added {increments}' from each child 0..{processes - 1}, got {added}")
    fields = summary(r)
    got, want = integer(fields, "counter"), processes * increments
    if got == 0:
        raise Fail(f"counter=0{when}: the children each added to their own copy of the counter (fork copies the "
                   "parent's memory); the parent's was never touched. Put it in a SharedArray made before the fork")
    if got < want:
        raise Fail(f"counter={got}, expected {want}{when}: {want - got} additions lost, because two children read "
                   "the same value before either wrote it back. Take the array's lock around the +=")
    if got != want:
        raise Fail(f"counter={got}, expected {want}{when}")


@counter.check("4 children of 100,000 increments: the parent sees counter=400000", points=4)
def _(g):
    r = g.run(["--processes", "4", "--increments", "100000"], timeout=20).expect_exit(0)
    expect_count(r, 4, 100_000)


@counter.check("4 children of 2,000,000 increments at once, 5 runs: the count exact in every run", points=6)
def _(g):
    # Without the lock, a run loses additions when two children really run
    # at once, on two cores: on an idle 2-core machine about one run in two
    # (a run takes 0.3 s with the lock). So five runs catch a missing lock
    # most of the time, not always: a busy machine runs them one by one.
    for run in range(5):
        r = g.run(["--processes", "4", "--increments", "2000000"], timeout=30).expect_exit(0)
        expect_count(r, 4, 2_000_000, run)


# --- 04/results ----------------------------------------------------------------------

results = Exercise(
    "results", "Results from N children, in a dict the parent reads", minutes=20,
    seed="003, 扩展:进程 2、进程共享数据: 方法二 manage.dict(), each child sets dic[i]",
    hint="""Create conclab::SharedDict<int, Result> results(flags.tasks) before the fork: a child calls
results.set(i, Result{...}), the parent results.get(i), which is a std::optional. Result
is a struct of numbers; say so once, after it, with
  template <> inline constexpr bool conclab::portable<Result> = true;
or SharedDict does not compile (read the message). For the time: keep the children in a
std::vector<conclab::Process>, start() each in one loop and join() them in a second,
as labs/03-fork/forked.cpp does.""")


def expect_results(r, tasks):
    parent = integer(summary(r), "parent_pid")
    found = {}
    for m in re.finditer(r"^task (\d+) = (-?\d+) by pid (\d+)$", r.stdout, re.M):
        found[int(m.group(1))] = (int(m.group(2)), int(m.group(3)))
    missing = [i for i in range(tasks) if i not in found]
    if missing:
        raise Fail(f"no result for task(s) {missing} (expected 'task i = i*i by pid P' for each of 0..{tasks - 1}): "
                   "what a child writes into the parent's std::map goes into its own copy. Use a SharedDict")
    wrong = {i: v for i, (v, _) in found.items() if i < tasks and v != i * i}
    if wrong:
        raise Fail(f"wrong results (task: value): {wrong}; task i gives i*i")
    pids = [pid for _, pid in found.values()]
    if parent in pids:
        raise Fail(f"a result says the parent (pid {parent}) computed it: each task runs in a child")
    if len(set(pids)) != len(pids):
        raise Fail(f"the results come from the pids {pids}: each task runs in a child of its own")


@results.check("6 tasks: 'task i = i*i by pid P' for each, from 6 different children", points=5)
def _(g):
    r = g.run(["--tasks", "6", "--sleep-ms", "20"], timeout=20).expect_exit(0)
    expect_results(r, 6)


@results.check("6 tasks of 200 ms take less than 3x the time of one, with every result", points=5)
def _(g):
    # At once, 6 tasks take one sleep and a little (~1.1x, ~1.3x on a loaded
    # machine); one after the other, 6 sleeps.
    one = g.run(["--tasks", "1", "--sleep-ms", "200"], timeout=20).expect_exit(0)
    six = g.run(["--tasks", "6", "--sleep-ms", "200"], timeout=20).expect_exit(0)
    expect_results(six, 6)
    ratio = six.seconds / one.seconds
    if ratio >= 3:
        raise Fail(f"6 tasks took {six.seconds:.3f} s, one took {one.seconds:.3f} s: {ratio:.1f}x as long, needs "
                   "less than 3x. Start every child before joining the first")


# --- 04/no_leak ----------------------------------------------------------------------

no_leak = Exercise(
    "no_leak", "Shared memory by hand, and nothing left behind", minutes=25,
    seed="003, 扩展:进程 2、进程共享数据: 方法一 Array, the named shared memory beneath it",
    hint="""The name is needed only to open the segment: the memory outlives its name as long as a
descriptor or a mapping holds it, as an open file outlives its unlink. So call
shm_unlink right after shm_open (or after mmap, as conclab's Segment does in
shared/src/shm.cpp). The children can then no longer open the name, and need not: a
child made by fork() inherits the parent's mappings, so `slots` points at the same
shared memory in the child. A try/catch or a destructor that unlinks at the end saves
--fail error, but after SIGKILL nothing of the program runs at all.""")


def no_segment_left(r, why):
    if r.problem and "shared-memory segment" in r.problem:
        raise Fail(f"{r.problem}; {why}")
    r.expect_clean()
    if "child 0 failed" in r.stderr and "shm_open" in r.stderr:
        raise Fail("the children failed: they open the segment by its name, which is gone. They do not need it: "
                   "fork() gives each child the parent's mapping; its stderr ends:\n      "
                   + "\n      ".join(r.stderr.strip().splitlines()[-3:]))


@no_leak.check("--fail error: exit 1 and the error, every child's write seen, nothing left in /dev/shm "
               "(and a run that does not fail: exit 0)", points=4)
def _(g):
    ok = g.run(["--processes", "4"], timeout=10)
    no_segment_left(ok, "a run that does not fail left its segment")
    if ok.returncode != 0:
        raise Fail(f"a run without --fail should exit 0, got {ok.returncode} (unlinking the name twice?); stderr: "
                   f"{ok.stderr.strip()[-300:]!r}")
    parent_sees(ok, 4)
    r = g.run(["--processes", "4", "--fail", "error"], timeout=10)
    no_segment_left(r, "the program threw before its shm_unlink, so the name stayed")
    if r.returncode != 1 or "failing on purpose" not in r.stderr:
        raise Fail(f"expected exit 1 and 'error: failing on purpose ...' on stderr, got exit {r.returncode} and "
                   f"stderr {r.stderr.strip()[-300:]!r}")
    parent_sees(r, 4)


@no_leak.check("--fail kill: killed by SIGKILL after the children, and still nothing left in /dev/shm", points=6)
def _(g):
    r = g.run(["--processes", "4", "--fail", "kill"], timeout=10)
    no_segment_left(r, "no code of a process runs after SIGKILL: the name must be gone before anything can fail")
    if r.returncode != -9:
        raise Fail(f"expected the program to be killed by SIGKILL (leave the std::raise in), got exit {r.returncode}"
                   + (f"; stderr: {r.stderr.strip()[-300:]!r}" if r.stderr.strip() else ""))
    parent_sees(r, 4)


# --- 04/robust -----------------------------------------------------------------------

robust = Exercise(
    "robust", "A child dies holding the lock", minutes=40,
    seed="003, 扩展:进程 2、进程共享数据: 方法一 Array, a child killed while it holds the lock",
    hint="""Keep an undo record in shared memory beside the accounts (a SharedArray<Undo> of one struct
that you mark portable): which two accounts the transfer changes, and their balances
before. Under the lock: write the record, set its `pending` flag, change the balances,
clear the flag. Whoever takes the lock and finds get_lock().owner_died() true (it says
so once, to the taker) restores the two balances if `pending` is set. The parent reads
the same way, not with snapshot(): that takes the lock but repairs nothing (and the
lock is not recursive, so do not call snapshot() while you hold it).
std::atomic_signal_fence(std::memory_order_seq_cst) between the steps keeps the compiler
from reordering the stores a SIGKILL can fall between.""")


def expect_balances(r, processes, accounts, transfers, kill_child, kill_at):
    for i in range(processes):
        m = re.search(rf"^child {i}: (.*)$", r.stdout, re.M)
        status = m.group(1) if m else "no line"
        if i == kill_child and not status.startswith("signal 9"):
            raise Fail(f"child {i} was not killed ('child {i}: {status}'): leave the kill in, repair after it")
        if i != kill_child and status != "exit status 0":
            raise Fail(f"child {i}: {status}, expected exit status 0")
    fields = summary(r)
    total, want = integer(fields, "total"), integer(fields, "expected")
    m = re.search(r"^balances \[([-0-9, ]*)\]$", r.stdout, re.M)
    if not m:
        raise Fail("no 'balances [...]' line in its output")
    got = [int(x) for x in m.group(1).split(",")]
    if total != want:
        raise Fail(f"total={total} expected={want}: the dead child's transfer was left half done and nobody "
                   "repaired it. Whoever takes the lock next must find out (owner_died()) and put it right")
    opening = want // accounts

    def balances(killed_done):
        b = [opening] * accounts
        for i in range(processes):
            done = killed_done if i == kill_child else transfers
            b[i % accounts] -= done
            b[(i + 1) % accounts] += done
        return b
    before, after = balances(kill_at), balances(kill_at + 1)
    if got not in (before, after):
        raise Fail(f"balances {got}: neither as before the killed transfer {before} nor as after it {after}")


@robust.check("4 children, child 0 killed in its transfer 100: every balance exact, no unit lost", points=5)
def _(g):
    r = g.run(["--processes", "4", "--accounts", "4", "--transfers", "20000", "--kill-child", "0",
               "--kill-at", "100"], timeout=10).expect_exit(0)
    expect_balances(r, 4, 4, 20000, 0, 100)


@robust.check("one child alone, killed in its transfer 10: the parent repairs before it reads", points=5)
def _(g):
    r = g.run(["--processes", "1", "--accounts", "2", "--transfers", "50", "--kill-child", "0",
               "--kill-at", "10"], timeout=10).expect_exit(0)
    expect_balances(r, 1, 2, 50, 0, 10)


EXERCISES = [counter, results, no_leak, robust]
