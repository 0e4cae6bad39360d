"""Lab 01's exercises and their checks (scripts/grade 01)."""
import re

from gradelib import Exercise, Fail, ratio_at_least

# Lab programs a check runs as a baseline (built beside the exercises).
LAB_PROGRAMS = ["threads-serial"]


def events(r, what="worker"):
    """The ('start'|'done', id) events of a run, in the order printed."""
    found = []
    for line in r.lines():
        m = re.fullmatch(rf"{what} (\d+) (start|done)", line.strip())
        if m:
            found.append((m.group(2), int(m.group(1))))
    return found


def every_worker_once(ev, tasks):
    for kind in ("start", "done"):
        ids = sorted(i for k, i in ev if k == kind)
        if ids != list(range(tasks)):
            raise Fail(f"expected one '{kind}' line for each worker 0..{tasks - 1}, got ids {ids}")


def most_at_once(ev):
    running = most = 0
    for kind, _ in ev:
        running += 1 if kind == "start" else -1
        most = max(most, running)
    return most


def elapsed(r):
    m = re.search(r"elapsed ([0-9.]+) s", r.stdout)
    if not m:
        raise Fail("no 'elapsed N s' line in its output")
    return float(m.group(1))


# --- 01/threaded ---------------------------------------------------------------------

threaded = Exercise(
    "threaded", "Run each worker in its own thread", minutes=15,
    seed="000, threading 一: Thread (five workers, serial 5 s, threads 1 s)",
    hint="""Keep the threads in a std::vector<conclab::Thread>: emplace_back(worker, i, flags.sleep()),
then start() the new one. Join in a second loop, after every thread has started:
a join inside the first loop waits for each worker before starting the next, which is
the serial program again. Compare with labs/01-threads-speedup/threaded.cpp.""",
    tsan=True)


@threaded.check("every worker starts before the first one ends (under ThreadSanitizer)", points=5)
def _(g):
    r = g.run(["--tasks", "5", "--sleep-ms", "200"], tsan=True).expect_exit(0)
    ev = events(r)
    every_worker_once(ev, 5)
    first_done = next(n for n, (k, _) in enumerate(ev) if k == "done")
    if first_done < 5:
        raise Fail(f"only {first_done} worker(s) had started when the first one ended: they do not run at once")


@threaded.check("five 200 ms workers take about one sleep (>= 3.5x faster than serial)", points=5)
def _(g):
    serial = g.run_lab_program("threads-serial", ["--tasks", "5", "--sleep-ms", "200"]).expect_exit(0)
    r = g.run(["--tasks", "5", "--sleep-ms", "200"]).expect_exit(0)
    every_worker_once(events(r), 5)
    ratio_at_least("serial time / your time", r.seconds, serial.seconds, 3.5)


# --- 01/bounded ----------------------------------------------------------------------

bounded = Exercise(
    "bounded", "Many workers on at most K threads, in the ideal time", minutes=30,
    seed="000, threading 一: Thread, more workers than threads",
    hint="""Start min(K, tasks) threads. Each runs a loop: take a number from a std::atomic<int>
(next++ hands each number out once), run worker(number, sleep) while the number is
below tasks, and stop when it is not. A plain int shared by the threads is a data race:
ThreadSanitizer reports it. Batches of K (start K, join K) also keep the bound, and are
as fast here only because every worker sleeps the same time.""",
    tsan=True)


@bounded.check("never more than K workers at once, and K at once (under ThreadSanitizer)", points=5)
def _(g):
    r = g.run(["--tasks", "12", "--sleep-ms", "150", "--max-threads", "4"], tsan=True).expect_exit(0)
    ev = events(r)
    every_worker_once(ev, 12)
    most = most_at_once(ev)
    if most > 4:
        raise Fail(f"{most} workers ran at once, more than --max-threads 4")
    if most < 4:
        raise Fail(f"at most {most} worker(s) ran at once: 4 threads should run 4")


@bounded.check("12 workers of 150 ms on 4 threads take about 3 sleeps (within 1.3x of 3 in a row)", points=5)
def _(g):
    chain = g.run_lab_program("threads-serial", ["--tasks", "3", "--sleep-ms", "150"]).expect_exit(0)
    r = g.run(["--tasks", "12", "--sleep-ms", "150", "--max-threads", "4"]).expect_exit(0)
    every_worker_once(events(r), 12)
    if most_at_once(events(r)) > 4:
        raise Fail("more than 4 workers ran at once")
    ratio_at_least("(1.3 x three sleeps in a row) / your time", r.seconds, 1.3 * chain.seconds, 1.0)


# --- 01/in_order ---------------------------------------------------------------------

in_order = Exercise(
    "in_order", "Each result as its worker finishes", minutes=20,
    seed="000, threading 一: Thread, start() and join()",
    hint="""join() waits for one particular thread, so joining in any fixed order prints in that
order. Let each thread print its own result when work() returns: fmt::print writes a
whole line at once, so lines from different threads do not mix. If the results must
go through main(), a std::mutex and std::condition_variable around a queue do it.""",
    tsan=True)


@in_order.check("results appear in the order the workers finish, with no race (ThreadSanitizer)", points=10)
def _(g):
    r = g.run(["--tasks", "5", "--sleep-ms", "100"], tsan=True).expect_exit(0)
    order = [int(m.group(1)) for m in re.finditer(r"^result (\d+) = (\d+)", r.stdout, re.M)]
    values = {int(m.group(1)): int(m.group(2)) for m in re.finditer(r"^result (\d+) = (\d+)", r.stdout, re.M)}
    if sorted(order) != [0, 1, 2, 3, 4]:
        raise Fail(f"expected one 'result i = ...' line per worker 0..4, got {order}")
    if any(values[i] != i * i for i in values):
        raise Fail(f"wrong results: {values}")
    finish = sorted(range(5), key=lambda i: (2 * i) % 5 + 1)  # the starter's sleeps: 0, 3, 1, 4, 2
    if order != finish:
        raise Fail(f"results came in the order {order}; the workers finish {', '.join(map(str, finish))}")


EXERCISES = [threaded, bounded, in_order]
