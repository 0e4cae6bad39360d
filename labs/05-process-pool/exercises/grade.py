"""Lab 05's exercises and their checks (scripts/grade 05).

Every program here runs a conclab::Pool, whose workers are processes (forked
by the pool's fork server), so nothing runs under ThreadSanitizer. The
grader's own cleanup fails a run that leaves a worker or the fork server
running, or a zombie.
"""
import re
import time

from gradelib import Exercise, Fail, integer, summary

# No lab program is needed as a baseline: 05/map_chunks compares with the same
# sleeps done here, one after the other; 05/timeout with a run of itself.
LAB_PROGRAMS = []

SEED = "multiprocessing (seed 003, 3、进程池)"


def expect_counts(r, **want):
    fields = summary(r)
    wrong = [f"{k}={integer(fields, k)} (expected {v})" for k, v in want.items() if integer(fields, k) != v]
    if wrong:
        raise Fail("the summary line says " + ", ".join(wrong))


def task_lines(r, i):
    """The lines about task i ('task <i>: ...'), in order, without the prefix."""
    return [m.group(1) for m in re.finditer(rf"^task {i}: (.*)$", r.stdout, re.M)]


# --- 05/initializer --------------------------------------------------------------------

initializer = Exercise(
    "initializer", "Set each worker up with an initializer and initargs", minutes=15,
    seed=SEED + ": Pool(5) and its Foo; a worker sees the program's globals as it starts "
         "(Pool(processes, initializer, initargs))",
    hint="""Write void set_scale(int s) { scale = s; fmt::print("worker {} ready: scale={}\\n", ::getpid(), s); }
and make the pool with conclab::Pool pool(processes, set_scale, scale): the pool sends
the value to each new worker, which calls set_scale(value) once, before any task.
Setting `scale` in main() changes only this process's copy: the workers are
copies of the program as it starts, not of this process now. Passing scale to
lookup() as an argument also works, but here the task stays as it is.""")


def expect_results(r, tasks, scale):
    for i in range(tasks):
        got = task_lines(r, i)
        if got != [str(i * scale)]:
            if got == [str(i)]:
                raise Fail(f"task {i}: {got[0]}, expected {i * scale}: the workers still see scale=1 (main() set "
                           "only its own copy); set it in each worker with an initializer")
            raise Fail(f"task {i}: expected one line 'task {i}: {i * scale}', got {got}")
    expect_counts(r, sum=scale * tasks * (tasks - 1) // 2)


@initializer.check("--scale 7: every task's result is scaled in the workers", points=5)
def _(g):
    r = g.run(["--scale", "7", "--processes", "3", "--tasks", "12"], timeout=15).expect_exit(0)
    expect_results(r, 12, 7)


@initializer.check("each worker runs the initializer exactly once, with --scale", points=5)
def _(g):
    r = g.run(["--scale", "5", "--processes", "4", "--tasks", "10"], timeout=15).expect_exit(0)
    ready = re.findall(r"^worker (\d+) ready: scale=(\d+)$", r.stdout, re.M)
    if not ready:
        raise Fail("no line 'worker <pid> ready: scale=5': the initializer did not run, or does not print it")
    pids = [pid for pid, _ in ready]
    if len(set(pids)) != len(pids):
        raise Fail("one worker printed 'ready' more than once: the initializer runs once per worker, not per task")
    if len(pids) != 4:
        raise Fail(f"{len(pids)} worker(s) printed 'ready', expected one line from each of the 4 workers")
    if any(s != "5" for _, s in ready):
        raise Fail(f"a worker is ready with the wrong scale: {ready}")
    expect_results(r, 10, 5)


# --- 05/callbacks ----------------------------------------------------------------------

callbacks = Exercise(
    "callbacks", "An error_callback for the tasks that fail", minutes=15,
    seed=SEED + ": apply_async(func=Foo, args=(i,), callback=Bar), and the error_callback it lacks",
    hint="""apply_async takes the error_callback as its fourth argument, after the callback:
pool.apply_async(Foo, std::tuple{...}, Bar, [i](const std::exception& e) { ... });
It runs in this process (the pool's result thread), so a lambda may capture i.
Print "task {i} failed: {e.what()}" there and ++failed (an atomic: the result
thread writes it, main() reads it). Calling get() on every result after join()
would find the errors too, but only at the end: the grader wants each one as
soon as its task fails.""")


@callbacks.check("every failed task is reported with its number and error (--bad-every 3)", points=5)
def _(g):
    r = g.run(["--processes", "4", "--tasks", "9", "--sleep-ms", "50", "--bad-every", "3"],
              timeout=15).expect_exit(0)
    bad = [2, 5, 8]
    for i in range(9):
        line = f"result {i + 100}"
        if i in bad:
            got = re.findall(rf"^task {i} failed: (.*)$", r.stdout, re.M)
            if len(got) != 1:
                raise Fail(f"task {i} threw, but there is no line 'task {i} failed: ...' (got {len(got)})")
            if f"bad item {i}" not in got[0]:
                raise Fail(f"'task {i} failed: {got[0]}' does not say the task's error ('bad item {i}')")
            if line in r.lines():
                raise Fail(f"'{line}' printed for a task that failed")
        elif r.lines().count(line) != 1:
            raise Fail(f"expected one line '{line}', got {r.lines().count(line)}")
    expect_counts(r, ok=6, failed=3)


@callbacks.check("each failure is reported when it happens, and ok + failed = tasks", points=5)
def _(g):
    # Five workers, two waves: tasks 0..4 end at ~150 ms (3 fails), 5..9 at ~300 ms (7 fails).
    r = g.run(["--processes", "5", "--tasks", "10", "--sleep-ms", "150", "--bad-every", "4"],
              timeout=15).expect_exit(0)
    lines = r.lines()
    where = {}
    for n, line in enumerate(lines):
        m = re.fullmatch(r"task (\d+) failed: .*", line.strip())
        if m:
            where.setdefault(int(m.group(1)), n)
    if sorted(where) != [3, 7]:
        raise Fail(f"expected a 'task i failed: ...' line for tasks 3 and 7, got one for {sorted(where)}")
    second_wave = [n for n, line in enumerate(lines) if line.strip() in {f"result {v}" for v in (105, 106, 108, 109)}]
    if len(second_wave) != 4:
        raise Fail("expected the lines 'result 105', 'result 106', 'result 108' and 'result 109'")
    if where[3] > min(second_wave):
        raise Fail("task 3 failed in the first wave (at ~150 ms), but its line comes after results of the second "
                   "wave (~300 ms): report each failure in the error_callback, as it happens")
    fields = summary(r)
    ok, failed = integer(fields, "ok"), integer(fields, "failed")
    if (ok, failed) != (8, 2):
        raise Fail(f"the summary says ok={ok} failed={failed}, expected ok=8 failed=2 (ok + failed = tasks = 10)")


# --- 05/map_chunks ---------------------------------------------------------------------

map_chunks = Exercise(
    "map_chunks", "Map 1,000 uneven items at >= 80% of ideal efficiency", minutes=25,
    seed=SEED + ": Pool(5) dealing out tasks; CPython's map(func, iterable, chunksize)",
    hint="""The default chunksize makes about 4 chunks per worker: with 4 workers, chunks of 63 items,
and the last chunk (items 945..999) holds all 50 expensive items, 400 ms of work for one
worker while the ideal is about 150 ms each. Smaller chunks spread the tail over every
worker; a chunk is one task, one message each way, which costs conclab's pool a few
microseconds (CPython's tens), small beside 200 us of work. Try a few chunksizes and
read map_s=; the results must stay in item order, so keep map() (or imap()).""")

CHEAP_US, DEAR_US, ITEMS, DEAR = 200, 8000, 1000, 50


def serial_seconds():
    """The items' sleeps one after the other, here: what one worker alone would take."""
    start = time.monotonic()
    for item in range(ITEMS):
        time.sleep((DEAR_US if item >= ITEMS - DEAR else CHEAP_US) / 1e6)
    return time.monotonic() - start


def expect_efficiency(g, processes, attempts=3):
    """map_s= against the ideal (the serial sleeps over the pool size), each
    measured just before the run. The best of up to `attempts` counts: on a
    loaded machine one slow wake-up of the baseline or of the run is noise,
    while the default chunksize stays near 40% of the ideal every time."""
    seen = []
    for _ in range(attempts):
        serial = serial_seconds()
        r = g.run(["--processes", str(processes)], timeout=30).expect_exit(0)
        fields = summary(r)
        if integer(fields, "results") != ITEMS:
            raise Fail(f"results={fields.get('results')}, expected {ITEMS}")
        want = 0
        for item in range(ITEMS):
            want = (want * 31 + 2 * item + 1) % 2**64
        if integer(fields, "check") != want:
            raise Fail("wrong results, or not in item order (check= differs): keep map() or imap(), "
                       "not imap_unordered()")
        try:
            took = float(fields["map_s"])
        except (KeyError, ValueError):
            raise Fail("the summary line has no map_s=...")
        ideal = serial / processes
        seen.append(f"map_s={took:.3f} against ideal {ideal:.3f} (serial {serial:.3f} / {processes}): "
                    f"{ideal / max(took, 1e-9):.0%}")
        if took * 0.8 <= ideal:
            g.notes += [f"{processes} workers: {line}" for line in seen]
            return
    raise Fail(f"on {processes} workers the map must reach 80% of ideal efficiency (ideal time / map time; the "
               f"ideal: the same sleeps one after the other, here, over {processes}); best of {attempts}: "
               + "; ".join(seen))


@map_chunks.check("4 workers: >= 80% of ideal efficiency (ideal time / map time), results in order", points=5)
def _(g):
    expect_efficiency(g, 4)


@map_chunks.check("3 workers: >= 80% of ideal efficiency, results in order", points=5)
def _(g):
    expect_efficiency(g, 3)


# --- 05/worker_lost --------------------------------------------------------------------

worker_lost = Exercise(
    "worker_lost", "A task that kills its worker: report it, retry it once", minutes=25,
    seed=SEED + ": Pool(5) and apply_async(...).get(); a worker that dies (CPython's Pool hangs)",
    hint="""Wrap the get() in try { ... } with two handlers. catch (const conclab::WorkerLost& e):
print the 'worker lost' line, ++retried, and run the task again with attempt 1, e.g.
pool.apply(job, i, 1, fate(i)) (the pool has replaced the worker by then), inside a try of
its own whose catch (const conclab::TaskError& e) reports 'error' and ++failed: a loop
until it succeeds never ends for a task that always kills its worker.
catch (const conclab::RemoteError& e): the task threw; print 'error', ++failed, no retry.
Both derive from conclab::TaskError, so a single catch of TaskError cannot tell them apart.""")


def expect_task(r, i, want):
    got = task_lines(r, i)
    if len(got) != len(want) or not all(re.fullmatch(w, line) for w, line in zip(want, got)):
        shown = " / ".join(got) if got else "no line"
        raise Fail(f"task {i}: got {shown!r}; expected the lines " + " / ".join(f"/{w}/" for w in want))


LOST = r"worker lost: worker process \d+ died while running the task: signal 9 .*; retrying"


def lost_run(g, args):
    r = g.run(args, timeout=6)
    if r.problem:
        raise Fail(r.problem + " (does it retry a lost task more than once?)")
    if r.returncode != 0:
        err = r.stderr.strip().splitlines()
        raise Fail(f"exit status {r.returncode}, expected 0: a failed task must not end the program"
                   + (f" (it said: {err[-1]})" if err else ""))
    return r


@worker_lost.check("tasks that kill their worker once are retried and succeed; the rest finish", points=4)
def _(g):
    r = lost_run(g, ["--processes", "2", "--tasks", "8", "--kill", "1", "6", "--fail", "3"])
    for i in range(8):
        if i in (1, 6):
            expect_task(r, i, [LOST, str(10 * i)])
        elif i != 3:
            expect_task(r, i, [str(10 * i)])
    expect_counts(r, ok=7, retried=2, replaced=2)


@worker_lost.check("a task that throws is reported as an error, not retried", points=3)
def _(g):
    r = lost_run(g, ["--processes", "3", "--tasks", "9", "--kill", "4", "--fail", "2", "7"])
    for i in (2, 7):
        expect_task(r, i, [rf"error: .*bad item {i}"])
    expect_task(r, 4, [LOST, "40"])
    expect_counts(r, ok=7, retried=1, failed=2, replaced=1)


@worker_lost.check("a task that kills every worker it runs on fails after one retry", points=3)
def _(g):
    r = lost_run(g, ["--processes", "2", "--tasks", "6", "--kill", "0", "--kill-always", "3", "--fail", "5"])
    expect_task(r, 3, [LOST, r"error: worker process \d+ died while running the task: signal 9 .*"])
    expect_task(r, 0, [LOST, "0"])
    expect_task(r, 5, [r"error: .*bad item 5"])
    expect_counts(r, ok=4, retried=2, failed=2, replaced=3)


# --- 05/timeout ------------------------------------------------------------------------

timeout = Exercise(
    "timeout", "apply_async with one deadline on get, then terminate", minutes=30,
    seed=SEED + ": apply_async(...).get(), here get(timeout); close()/join() against terminate()",
    hint="""Take auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms)
before the loop; for each result, wait for what is left of it: get(deadline - now), not
below zero (std::max with steady_clock::duration(0)); catch (const conclab::TimeoutError&)
prints "timed out". A fixed get(timeout) per task waits the whole timeout again for each
hung task. After the loop, a hung task still runs: close() + join() would wait for it
forever (so would the Pool's destructor), terminate() kills the workers, then join().""")


def timeout_run(g, args):
    r = g.run(args, timeout=5)
    if r.problem and r.returncode is None:
        raise Fail(r.problem + ": a get() without a timeout, or close() + join(), waits for a hung task forever")
    return r.expect_exit(0)


@timeout.check("hung tasks are reported as timed out, the others with their results", points=5)
def _(g):
    r = timeout_run(g, ["--tasks", "6", "--hang-every", "3", "--sleep-ms", "100", "--timeout-ms", "400"])
    for i in range(6):
        expect_task(r, i, ["timed out" if i in (2, 5) else str(i * i)])
    expect_counts(r, ok=4, timed_out=2)


@timeout.check("four hung tasks cost one timeout, not four (<= 1.5x a run where none hangs)", points=5)
def _(g):
    base = g.run(["--tasks", "8", "--hang-every", "0", "--sleep-ms", "300", "--timeout-ms", "5000"],
                 timeout=10).expect_exit(0)
    r = timeout_run(g, ["--tasks", "8", "--hang-every", "2", "--sleep-ms", "50", "--timeout-ms", "300"])
    for i in range(8):
        expect_task(r, i, ["timed out" if i % 2 else str(i * i)])
    expect_counts(r, ok=4, timed_out=4)
    g.notes.append(f"no task hangs, each takes 300 ms: {base.seconds:.3f} s; four hang, timeout 300 ms: "
                   f"{r.seconds:.3f} s ({r.seconds / base.seconds:.2f}x)")
    if r.seconds > 1.5 * base.seconds:
        raise Fail(f"with four hung tasks and --timeout-ms 300 it took {r.seconds:.3f} s, "
                   f"{r.seconds / base.seconds:.2f}x a run where every task takes 300 ms and none hangs ({base.seconds:.3f} s); at most 1.5x: "
                   "wait until one deadline for all the results, not --timeout-ms for each")


EXERCISES = [initializer, callbacks, map_chunks, worker_lost, timeout]
