"""Lab 02's exercises and their checks (scripts/grade 02)."""
import re
import resource

from gradelib import Exercise, Fail, number, ratio_at_least

# Lab programs a check runs as a baseline (built beside the exercises).
LAB_PROGRAMS = ["counter-mutex", "counter-atomic", "counter-rlock"]

SEED = "003, threading 2、线程锁"


def counted(r, model):
    """Checks the summary line: its model, and counter= equal to expected=."""
    m = re.search(r"^model=(\S+) .*\bcounter=(-?\d+) expected=(\d+)", r.stdout, re.M)
    if not m:
        raise Fail("no summary line 'model=... counter=N expected=N ...' in its output")
    if m.group(1) != model:
        raise Fail(f"the summary line says model={m.group(1)}, expected model={model}")
    counter, expected = int(m.group(2)), int(m.group(3))
    if counter < expected:
        raise Fail(f"counter={counter} but expected={expected}: {expected - counter} update(s) lost")
    if counter > expected:
        raise Fail(f"counter={counter} but expected={expected}: {counter - expected} too many")


def elapsed(r):
    # Printed with 3 decimals: a run under a millisecond prints 0.000, counted as 1 ms.
    return max(number(r"elapsed_s=([0-9.]+)", r.stdout, "elapsed_s="), 0.001)


def cpu_seconds():
    """CPU time (user + system) of the grader's children reaped so far."""
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def fastest(programs, times=3, cpu=False):
    """The least time of each of several programs, run `times` rounds in turn
    (so that all see the same load); each run must count every increment.
    `programs` is [(run, args, model)], run(args) -> Result. The time is the
    elapsed_s a run prints or, with cpu=True, the CPU time it took (the
    grader reaps each run before the next starts): for one thread, the CPU
    time hardly depends on how loaded the machine is."""
    best = [float("inf")] * len(programs)
    for _ in range(times):
        for i, (run, args, model) in enumerate(programs):
            before = cpu_seconds()
            r = run(args).expect_exit(0)
            used = cpu_seconds() - before
            counted(r, model)
            best[i] = min(best[i], used if cpu else elapsed(r))
    return best


def faster(g, name, fast, slow, least):
    """ratio_at_least, and with -v the ratio it measured, pass or fail."""
    if g.verbose:
        g.notes.append(f"{name}: {slow:.3f} s / {fast:.3f} s = {slow / fast:.2f}x (needs {least:g}x)")
    ratio_at_least(name, fast, slow, least)


def no_race(g, args, timeout=20):
    """Runs the ThreadSanitizer build; any report (named for what it is) fails the check."""
    return g.run(args, tsan=True, timeout=timeout)


# --- 02/lost_updates -----------------------------------------------------------------

lost_updates = Exercise(
    "lost_updates", "Stop losing updates: a mutex, then an atomic", minutes=15,
    seed=SEED + ": gl_num += 1 from many threads, and a lock around it",
    hint="""counter = counter + 1 is a load, an add and a store: two threads load the same old value
and one increment is lost. --way mutex: a std::mutex beside the counter and a
std::lock_guard inside the loop, around the increment (as counter_mutex.cpp does).
--way atomic: std::atomic<long> atomic_counter{0}; and atomic_counter.fetch_add(1) (or
++atomic_counter), one indivisible step and no lock; atomic_counter = atomic_counter + 1 on an
atomic is still a load and a separate store, and still loses updates.""",
    tsan=True)


@lost_updates.check("--way mutex counts every increment with 2 and 4 threads, no race (ThreadSanitizer)", points=4)
def _(g):
    for threads, increments in (("2", "100000"), ("4", "50000")):
        r = no_race(g, ["--way", "mutex", "--threads", threads, "--increments", increments]).expect_exit(0)
        counted(r, "mutex")


@lost_updates.check("--way atomic counts every increment with no race (ThreadSanitizer) and takes no lock "
                    "(1 thread: >= 1.25x faster than counter-mutex)", points=6)
def _(g):
    for threads, increments in (("2", "100000"), ("4", "50000")):
        r = no_race(g, ["--way", "atomic", "--threads", threads, "--increments", increments]).expect_exit(0)
        counted(r, "atomic")
    args = ["--threads", "1", "--increments", "5000000"]
    mine, mutex = fastest([(g.run, ["--way", "atomic", *args], "atomic"),
                           (lambda a: g.run_lab_program("counter-mutex", a), args, "mutex")], cpu=True)
    faster(g, "counter-mutex's CPU time / your atomic way's", mine, mutex, 1.25)


# --- 02/rlock_sleep ------------------------------------------------------------------

rlock_sleep = Exercise(
    "rlock_sleep", "The seed's RLock program, without the wait", minutes=10,
    seed=SEED + ": the RLock program (time.sleep(1) with the lock held)",
    hint="""Only one thread can hold the lock, so whatever runs while it is held runs one thread at a
time. What must the lock cover? Only what the threads share: the counter. Take the lock,
increment, keep the new value in a local variable, release (a std::lock_guard in a block
of its own does it), then sleep and print the local value. Printing counter itself after
the sleep reads it while other threads change it: a race, and every thread prints the last
value. Compare with counter_rlock_outside.cpp once yours works.""",
    tsan=True)


def every_number_once(r, tasks, sleep_ms):
    numbers = sorted(int(line) for line in r.lines() if line.strip().isdigit())
    if numbers != list(range(1, tasks + 1)):
        raise Fail(f"expected each number 1..{tasks} printed once, got {numbers}")
    # The sleep is the seed's stand-in for work: it must still happen, outside the lock.
    if elapsed(r) < 0.9 * sleep_ms / 1000:
        raise Fail(f"took {elapsed(r):.3f} s, less than one sleep of {sleep_ms} ms: the sleep is the work, keep it")


@rlock_sleep.check("10 tasks of 100 ms beat the unchanged program's 4 in a row, each number printed once",
                   points=5)
def _(g):
    serial = g.run_lab_program("counter-rlock", ["--tasks", "4", "--sleep-ms", "100"]).expect_exit(0)
    r = g.run(["--tasks", "10", "--sleep-ms", "100"], timeout=10).expect_exit(0)
    every_number_once(r, 10, 100)
    counted(r, "rlock")
    faster(g, "counter-rlock's 4 tasks / your 10 tasks", r.seconds, serial.seconds, 1.0)


@rlock_sleep.check("8 tasks of 200 ms under ThreadSanitizer: no race, each number once, "
                   "faster than the unchanged program's 4 in a row", points=5)
def _(g):
    serial = g.run_lab_program("counter-rlock", ["--tasks", "4", "--sleep-ms", "200"]).expect_exit(0)
    r = no_race(g, ["--tasks", "8", "--sleep-ms", "200"], timeout=10).expect_exit(0)
    every_number_once(r, 8, 200)
    counted(r, "rlock")
    # elapsed_s: from the first thread's start, without ThreadSanitizer's own start-up.
    faster(g, "counter-rlock's 4 tasks / your 8 tasks under ThreadSanitizer", elapsed(r), elapsed(serial), 1.0)


# --- 02/local_counts -----------------------------------------------------------------

local_counts = Exercise(
    "local_counts", "Count apart, add up once", minutes=25,
    seed=SEED + ": the shared gl_num, and what a lock around it costs",
    hint="""Give work() a second parameter, long& total, and count in a local variable (long mine = 0;
++mine in the loop); write total = mine once at the end. In main(), a
std::vector<long> counts(threads) holds one slot per thread: the thread's lambda captures
its own slot by reference (&total = counts[i]) and calls work(n, total); after join(),
add the slots up (std::accumulate). join() makes each thread's write visible to main():
no lock, no atomic. Nothing is shared while counting, so the compiler may even turn the
loop into one addition.""",
    tsan=True)


@local_counts.check("2 and 3 threads count every increment, no race (ThreadSanitizer)", points=4)
def _(g):
    for threads, increments in (("2", "200000"), ("3", "100000")):
        r = no_race(g, ["--threads", threads, "--increments", increments]).expect_exit(0)
        counted(r, "local")


BIG = ["--threads", "2", "--increments", "5000000"]


@local_counts.check("2 threads x 5M increments: every one counted, >= 4x faster than counter-mutex", points=3)
def _(g):
    mine, mutex = fastest([(g.run, BIG, "local"), (lambda a: g.run_lab_program("counter-mutex", a), BIG, "mutex")])
    faster(g, "counter-mutex's time / yours", mine, mutex, 4)


@local_counts.check("2 threads x 5M increments: every one counted, >= 4x faster than counter-atomic", points=3)
def _(g):
    mine, atomic = fastest([(g.run, BIG, "local"),
                            (lambda a: g.run_lab_program("counter-atomic", a), BIG, "atomic")])
    faster(g, "counter-atomic's time / yours", mine, atomic, 4)


# --- 02/deadlock ---------------------------------------------------------------------

deadlock = Exercise(
    "deadlock", "Two locks taken in opposite orders", minutes=30,
    seed=SEED + ": acquire() and release(), with two locks",
    hint="""Thread a holds alice's lock and waits for bob's; thread b holds bob's and waits for
alice's: neither lets go. (gdb -p PID, then 'thread apply all bt', shows both waiting.)
Never hold one of the two locks while blocking on the other: std::scoped_lock
both(from.mutex, to.mutex) takes the two at once, with std::lock's deadlock-avoiding
algorithm. Or let every thread take them in one global order (give Account an id and
lock the lower id first). Dropping a lock, or moving the money with one lock at a time,
is no fix: the balances are then changed by two threads at once, or the money is
nowhere for a moment.""",
    tsan=True)


def balances_back(r):
    alice = number(r"\balice=(-?\d+)", r.stdout, "alice=")
    bob = number(r"\bbob=(-?\d+)", r.stdout, "bob=")
    if (alice, bob) != (1000, 1000):
        raise Fail(f"alice={alice:g} bob={bob:g} at the end; each paid the other the same, so both should be 1000")


@deadlock.check("200 transfers each way finish in time (3 s), both balances back at 1000", points=5)
def _(g):
    r = g.run(["--transfers", "200", "--check-us", "100"], timeout=3)
    if r.problem and "still running" in r.problem:
        raise Fail(r.problem + " A deadlock: each thread holding one account's lock, waiting for the other's?")
    r.expect_exit(0)
    balances_back(r)


@deadlock.check("no lock-order inversion and no race (ThreadSanitizer), balances back at 1000", points=5)
def _(g):
    # No time between the two locks: the threads rarely hang at once, and
    # ThreadSanitizer sees both orders and reports them as an inversion.
    r = no_race(g, ["--transfers", "300", "--check-us", "0"], timeout=5)
    if r.problem and "still running" in r.problem:
        raise Fail(r.problem + " A deadlock: each thread holding one account's lock, waiting for the other's?")
    r.expect_exit(0)
    balances_back(r)


EXERCISES = [lost_updates, rlock_sleep, local_counts, deadlock]
