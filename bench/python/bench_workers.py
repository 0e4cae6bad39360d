#!/usr/bin/env python3
"""CPython peers of conclab-bench: the same workloads with the stdlib.

Writes Google Benchmark's JSON schema, every name prefixed "python/", so that
scripts/report can put each row beside its C++ twin:

    bench_workers.py --cases 5x1000,100x100 --out python.json

Timing follows Google Benchmark's rule: repeat a row until it has run for at
least --min-time seconds (at least once), report the mean per iteration; and
measure each row --repetitions times (5), or --long-repetitions times (4)
when it takes a second or more, each repetition an entry of the JSON
("repetitions", "repetition_index"), as conclab-bench writes them.

A row that fails (a thread or process that cannot start, a lost result) is
written as Google Benchmark writes one ended by SkipWithError:
"error_occurred": true and its "error_message"; the other rows still run, and
the exit status is 1.
"""
import _thread
import argparse
import datetime
import json
import math
import multiprocessing
import multiprocessing.dummy
import multiprocessing.pool
import os
import platform
import re
import resource
import socket
import sys
import threading
import time


# --- the worker models: one entry per model, as in bench/workers.cpp ---------

# Every process here is forked, as conclab::Process forks, and the start method
# is pinned on each object (FORK.Process, FORK.Pool, FORK.Array, FORK.Manager),
# not left to the default: shared-memory's target is a closure and its Array
# reaches the children by inheritance, which only fork allows, and CPython 3.14
# makes forkserver the default on Linux.
FORK = multiprocessing.get_context("fork")

# The steps of one work:cpu task: about 75 ms here, as conclab-bench's 75
# million (kCpuIterations in bench/bench.hpp): one task takes about as long
# in both languages, so that speed-ups compare concurrency, not start-up costs.
CPU_ITERATIONS = 1_000_000
CPU_TASK_S = 0.075  # about how long one such task takes (sizes the repetitions)
LONG_ROW_S = 1.0  # a row expected to take this long or longer is long: --long-repetitions
MASK = (1 << 64) - 1


def spin(iterations):
    """The same linear congruential walk as conclab::bench::spin, modulo 2**64."""
    x = 1
    for _ in range(iterations):
        x = (x * 6364136223846793005 + 1442695040888963407) & MASK
    return x


def work(sleep_ms):
    """Sleep sleep_ms, or (sleep_ms == 0, the work:cpu rows) do the fixed arithmetic."""
    if sleep_ms:
        time.sleep(sleep_ms / 1000)
    else:
        spin(CPU_ITERATIONS)


def run_serial(tasks, sleep_ms):
    for _ in range(tasks):
        work(sleep_ms)


# How long one run of a row may wait for its children or its pool before the
# row fails: far above the slowest row of the full profile. CPython waits
# forever for a pool task whose worker died (gh-66587), and a Manager whose
# server process cannot start a thread for a new connection never answers it.
HANG_S = 300


def start_all(workers, stop=None):
    """Start every worker. If one cannot start, stop (if given) and join those that did, then re-raise."""
    started = []
    try:
        for w in workers:
            w.start()
            started.append(w)
    except BaseException:
        end_all(started, stop)
        raise


def end_all(workers, stop=None):
    """Stop (if given) every worker still running, then join them all: nothing outlives a failed row."""
    for w in workers:
        if stop and w.is_alive():
            stop(w)
    for w in workers:
        w.join()


def run_in_threads(tasks, target):
    threads = [threading.Thread(target=target) for _ in range(tasks)]
    start_all(threads)  # a thread cannot be stopped: those started are waited for
    for t in threads:
        t.join()


def run_threaded(tasks, sleep_ms):
    run_in_threads(tasks, lambda: work(sleep_ms))


def run_forked(tasks, sleep_ms):
    """One multiprocessing.Process per task (lab 03)."""
    children = [FORK.Process(target=work, args=(sleep_ms,)) for _ in range(tasks)]
    start_all(children, FORK.Process.terminate)
    for p in children:
        p.join()
        if p.exitcode != 0:
            raise RuntimeError(f"forked: a child ended with exit code {p.exitcode}")


_manager = None


def manager():
    """One Manager server for the whole run: starting one takes tens of milliseconds."""
    global _manager
    if _manager is None:
        _manager = FORK.Manager()
    return _manager


def discard_manager():
    """End the Manager's server after a failed row: it may be unable to answer (see HANG_S).

    shutdown() would ask the server over a new connection, and wait forever
    for a server that no longer accepts one; killing its process first makes
    shutdown() only clean up.
    """
    global _manager, _dict
    if _manager is not None:
        _manager._process.kill()
        _manager.shutdown()
        _manager, _dict = None, None


def run_shared_memory(tasks, sleep_ms):
    """A process per task writing its index into an Array and a Manager().dict() (lab 04)."""
    results, by_task = FORK.Array("q", [-1] * tasks), manager().dict()

    def task(i):
        work(sleep_ms)
        results[i] = i
        by_task[i] = i
    children = [FORK.Process(target=task, args=(i,)) for i in range(tasks)]
    try:
        start_all(children, FORK.Process.terminate)
        deadline = time.monotonic() + HANG_S
        for p in children:
            p.join(max(0.0, deadline - time.monotonic()))
            if p.is_alive():
                raise RuntimeError(f"shared-memory: a child still runs after {HANG_S} s")
    except BaseException:
        end_all([p for p in children if p.pid is not None], FORK.Process.terminate)
        raise
    if list(results) != list(range(tasks)) or dict(by_task) != {i: i for i in range(tasks)}:
        raise RuntimeError("shared-memory: a result did not arrive")


POOL_CAP = 100  # pools get one worker per task, at most this many (bench/workers.cpp)


def pool_size(tasks):
    return min(tasks, POOL_CAP)


def echo(value):
    """The warm-up task: a round trip through a worker, no work."""
    return value


def run_pool(pool_class):
    """A pool (made once per row, outside the timing) mapping work over the tasks, one task per chunk.

    Its warm-up runs an empty task per worker: the workers' CPU time is read
    when they are reaped, after the timing, and the warm-up's counts in it."""
    def prepare(tasks, sleep_ms):
        pool = pool_class(pool_size(tasks))

        def run():
            # pool.map(...) is map_async(...).get(): the same, with a deadline.
            try:
                return pool.map_async(work, [sleep_ms] * tasks, chunksize=1).get(HANG_S)
            except multiprocessing.TimeoutError:
                raise RuntimeError(f"no result after {HANG_S} s (a worker died? CPython's Pool waits forever)") from None

        def clean_up(failed):
            if failed:
                pool.terminate()  # close() would wait for a task that never ends
            else:
                pool.close()
            pool.join()
        try:
            pool.map_async(echo, range(tasks), chunksize=1).get(HANG_S)  # warm up: every worker started
        except BaseException:
            clean_up(True)
            raise
        return run, clean_up
    return prepare


class _WorkerThread(multiprocessing.dummy.DummyProcess):
    def terminate(self):
        """Called only by Pool.__init__ when a later worker could not start: tell this one to leave."""
        self._args[0].put(None)  # the worker's inqueue; None ends multiprocessing.pool.worker


class ThreadPool(multiprocessing.pool.ThreadPool):
    """multiprocessing.pool.ThreadPool, fixed for a start that fails.

    When a worker thread cannot start (RuntimeError: can't start new thread),
    CPython's Pool.__init__ calls terminate() on the threads it started, which
    DummyProcess does not have: the real error becomes an AttributeError and the
    started threads stay blocked forever. Timing is unchanged.
    """
    @staticmethod
    def Process(ctx, *args, **kwds):
        return _WorkerThread(*args, **kwds)


def run_thread_locked(hold_across_work):
    """Lab 02's counter: an RLock held across the work (the seed) or around the increment only."""
    def run(tasks, sleep_ms):
        lock, counter = threading.RLock(), [0]

        def task():
            lock.acquire()
            counter[0] += 1
            if not hold_across_work:
                lock.release()
            work(sleep_ms)
            if hold_across_work:
                lock.release()
        run_in_threads(tasks, task)
        assert counter[0] == tasks
    return run


def simple(run):
    """A model with nothing to set up: prepare() returns the run and no clean-up."""
    return lambda tasks, sleep_ms: ((lambda: run(tasks, sleep_ms)), None)


# name -> (concurrency(tasks), prepare(tasks, sleep_ms) -> (run(), clean_up or None))
MODELS = {
    "serial": (lambda tasks: 1, simple(run_serial)),
    "threaded": (lambda tasks: tasks, simple(run_threaded)),
    "thread-pool": (pool_size, run_pool(ThreadPool)),
    "thread-locked": (lambda tasks: 1, simple(run_thread_locked(True))),
    "thread-locked-outside": (lambda tasks: tasks, simple(run_thread_locked(False))),
    "forked": (lambda tasks: tasks, simple(run_forked)),
    "process-pool": (pool_size, run_pool(FORK.Pool)),
    "shared-memory": (lambda tasks: tasks, simple(run_shared_memory)),
}


# --- micro benchmarks ----------------------------------------------------------

def thread_create_join():
    t = threading.Thread(target=lambda: None)
    t.start()
    t.join()


def raw_thread_create_join():
    """_thread, the layer under threading: start a thread, wait until its function has run."""
    done = _thread.allocate_lock()
    done.acquire()
    _thread.start_new_thread(done.release, ())
    done.acquire()


_rlock = threading.RLock()


def rlock_acquire_release():
    _rlock.acquire()
    _rlock.release()


def rlock_contended(batch=10_000):
    """Two threads each take and release one RLock `batch` times; returns the operations done."""
    def loop():
        for _ in range(batch):
            _rlock.acquire()
            _rlock.release()
    run_in_threads(2, loop)
    return 2 * batch


def fork_wait():
    p = FORK.Process(target=int)
    p.start()
    p.join()


_array = None
_dict = None
_key = 0


def shared_array_locked_increment(batch=1000):
    global _array
    if _array is None:
        _array = FORK.Array("q", 1)
    for _ in range(batch):
        with _array.get_lock():
            _array[0] += 1
    return batch


def shared_dict_set(batch=100):
    global _dict, _key
    if _dict is None:
        _dict = manager().dict()
    for _ in range(batch):
        _dict[_key] = _key
        _key = (_key + 1) % 1000
    return batch


def shared_dict_get(batch=100):
    global _dict, _key
    if _dict is None or len(_dict) < 1000:
        _dict = manager().dict({k: k for k in range(1000)})
    for _ in range(batch):
        _dict.get(_key)
        _key = (_key + 1) % 1000
    return batch


_pool = None


def micro_pool():
    """One Pool(2) for the pool microbenchmarks, as conclab-bench's."""
    global _pool
    if _pool is None:
        _pool = FORK.Pool(2)
    return _pool


def shut_down_helpers():
    """End the Manager and the micro pool, if started (they are made again when needed)."""
    global _manager, _pool, _dict
    if _manager is not None:
        _manager.shutdown()
        _manager, _dict = None, None
    if _pool is not None:
        _pool.terminate()
        _pool.join()
        _pool = None


def pool_apply():
    micro_pool().apply(abs, (1,))


def pool_apply_async(batch=1000):
    """1,000 apply_async in flight, then every get(): one row iteration is the whole batch."""
    pool = micro_pool()
    for r in [pool.apply_async(abs, (i,)) for i in range(batch)]:
        r.get()


MICRO = {
    "micro/fork-wait": fork_wait,  # first, as in conclab-bench: while the process is small
    "micro/pool-apply": pool_apply,
    "micro/pool-apply-async/batch:1000": pool_apply_async,
    "micro/shared-array-locked-increment": shared_array_locked_increment,
    "micro/shared-dict-set": shared_dict_set,
    "micro/shared-dict-get": shared_dict_get,
    "micro/thread-create-join": thread_create_join,
    "micro/raw-thread-create-join": raw_thread_create_join,
    "micro/rlock-acquire-release": rlock_acquire_release,
    # Google Benchmark's Threads(2): wall time per operation, both threads running.
    "micro/rlock-contended/threads:2": rlock_contended,
}


# --- measuring -------------------------------------------------------------------

def cpu_seconds():
    """CPU seconds of this process and its reaped children, like conclab-bench."""
    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        u = resource.getrusage(who)
        total += u.ru_utime + u.ru_stime
    return total


def measure(fn, min_time, clean_up=None):
    """Run fn until min_time seconds have passed; return (iterations, wall_s, cpu_s) per iteration.

    fn may return an int: how many operations one call did (a batch); else one.
    clean_up(failed) (ending a pool, which reaps its workers) runs before the
    CPU time is read, so that the workers' CPU time counts, as in conclab-bench;
    and when fn raises, before the error leaves.
    """
    iterations, cpu0, start = 0, cpu_seconds(), time.perf_counter()
    try:
        while True:
            n = fn()
            iterations += n if isinstance(n, int) else 1
            elapsed = time.perf_counter() - start
            if elapsed >= min_time:
                break
    except BaseException:
        if clean_up:
            clean_up(True)
        raise
    if clean_up:
        clean_up(False)
    return iterations, elapsed / iterations, (cpu_seconds() - cpu0) / iterations


def positive_float(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a number")
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text} is not positive")
    return value


def repetition_count(text):
    if not text.isdigit() or not 1 <= int(text) <= 100:
        raise argparse.ArgumentTypeError(f"'{text}' is not a number of repetitions from 1 to 100")
    return int(text)


def parse_case(text):
    """"NxT" -> (N, T); "Nxcpu" -> (N, 0), as conclab-bench's --cases."""
    m = re.fullmatch(r"(\d+)x(\d+|cpu)", text)
    if not m or not 1 <= int(m[1]) <= 100_000 or (m[2] != "cpu" and not 1 <= int(m[2]) <= 3_600_000):
        raise argparse.ArgumentTypeError(f"'{text}' is not TASKSxSLEEP_MS or TASKSxcpu")
    return int(m[1]), 0 if m[2] == "cpu" else int(m[2])


class OneLineParser(argparse.ArgumentParser):
    def error(self, message):
        print(f"{self.prog}: {message} (see --help)", file=sys.stderr)
        sys.exit(2)


def main():
    parser = OneLineParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", default="5x1000,1x100,10x100,100x100,1000x100,1000x10,1xcpu,2xcpu,8xcpu",
                        type=lambda s: [parse_case(c) for c in s.split(",")],
                        help="worker cases as TASKSxSLEEP_MS or TASKSxcpu, comma-separated (default %(default)s)")
    parser.add_argument("--max-ideal-s", type=positive_float, default=5.0,
                        help="leave out rows whose ideal time exceeds this (default %(default)s)")
    args, pattern = parse_run_args(parser)

    rows = []
    cores = os.cpu_count() or 1

    # The microbenchmarks first, while the process is small, as conclab-bench does.
    for name, fn in MICRO.items():
        if pattern.search(name):
            run_row(rows, name, None, args.repetitions, lambda: (*measure(fn, args.min_time), {}),
                    on_error=discard_manager)
    shut_down_helpers()  # the worker rows run without the micro pool's processes and threads

    for model, (concurrency, prepare) in MODELS.items():
        for tasks, sleep_ms in args.cases:
            if sleep_ms:
                name = f"workers/{model}/tasks:{tasks}/sleep_ms:{sleep_ms}"
            else:
                name = f"workers/{model}/tasks:{tasks}/work:cpu"
            ideal_s = sleep_ms / 1000 * math.ceil(tasks / concurrency(tasks))
            if ideal_s > args.max_ideal_s or not pattern.search(name):
                continue
            expected_s = ideal_s if sleep_ms else CPU_TASK_S * math.ceil(tasks / min(concurrency(tasks), cores))

            def once():
                run, clean_up = prepare(tasks, sleep_ms)
                iterations, wall_s, cpu_s = measure(run, args.min_time, clean_up)
                counters = {"cpu_s": cpu_s, "tasks": tasks}
                if sleep_ms:
                    counters.update(ideal_s=ideal_s, efficiency=ideal_s / wall_s,
                                    overhead_us=(wall_s - ideal_s) / tasks * 1e6, sleep_ms=sleep_ms)
                return iterations, wall_s, cpu_s, counters

            repetitions = args.long_repetitions if expected_s >= LONG_ROW_S else args.repetitions
            run_row(rows, name, "ms", repetitions, once, on_error=discard_manager)

    shut_down_helpers()
    return write_results(rows, args.out, "bench_workers.py", cpu_steps=CPU_ITERATIONS)


def run_row(rows, name, unit, repetitions, once, error_message=lambda e: f"{type(e).__name__}: {e}", on_error=None):
    """Measure row `name` `repetitions` times and append each repetition to rows, as Google Benchmark
    writes them; returns False when the row failed.

    once() measures one repetition: (iterations, wall_s, cpu_s, counters), times per iteration.
    unit: "ms", "us", "ns", or None for ns below a microsecond, else us. An exception from once()
    ends the row with a failed entry (error_occurred, error_message(e)), in the shape of a row
    ended by SkipWithError; the rows after it still run. on_error() runs first, while the
    exception still holds the failed row's objects: a Manager's proxies among them would, once
    freed, call a server that may no longer answer (discard_manager() kills it first).
    """
    for i in range(repetitions):
        entry = {"name": "python/" + name, "run_name": "python/" + name, "run_type": "iteration",
                 "repetitions": repetitions, "repetition_index": i, "threads": 1}
        try:
            iterations, wall_s, cpu_s, counters = once()
        except Exception as e:
            message = error_message(e)
            if on_error:
                on_error()
            rows.append({**entry, "error_occurred": True, "error_message": message, "iterations": 0,
                         "real_time": 0, "cpu_time": 0, "time_unit": unit or "us"})
            print(f"{entry['name']:<55} ERROR OCCURRED: {message!r}", flush=True)
            return False
        row_unit = unit or ("ns" if wall_s < 1e-6 else "us")
        scale = {"ms": 1e3, "us": 1e6, "ns": 1e9}[row_unit]
        rows.append({**entry, "iterations": iterations, "real_time": wall_s * scale, "cpu_time": cpu_s * scale,
                     "time_unit": row_unit, **counters})
        print(f"{entry['name']:<55} {wall_s * scale:12.3f} {row_unit:<2} {iterations:8d}  #{i + 1}/{repetitions}",
              flush=True)
    return True


def parse_run_args(parser):
    """Add the flags every Python peer shares (--min-time, --repetitions, --long-repetitions, --filter,
    --out), parse the command line; returns (args, the compiled --filter)."""
    parser.add_argument("--min-time", type=positive_float, default=0.5,
                        help="run each repetition of a row at least this many seconds (default %(default)s)")
    parser.add_argument("--repetitions", type=repetition_count, default=5,
                        help="measure each row this many times: median and spread (default %(default)s)")
    parser.add_argument("--long-repetitions", type=repetition_count, default=4,
                        help="... but rows of a second or more this many times (default %(default)s)")
    parser.add_argument("--filter", default=".", help="regex on the name without 'python/' (default: all)")
    parser.add_argument("--out", help="write the JSON here (default: stdout only)")
    args = parser.parse_args()
    try:
        return args, re.compile(args.filter)
    except re.error as e:
        parser.error(f"--filter: {e}")


def write_results(rows, out, prog, **context):
    """Write the rows as conclab-bench's JSON (with this Python's context) to
    `out` if given; the exit status: 1 if a row failed (said on stderr), not
    counting the impossible ones."""
    doc = {"context": {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "host_name": socket.gethostname(), "num_cpus": os.cpu_count(),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "executable": sys.executable, **context}, "benchmarks": rows}
    if out:
        with open(out, "w") as f:
            json.dump(doc, f, indent=2)
    # A row that cannot be done at all ("impossible: ...", bench_mux.py) is not a failure.
    failed = sum(1 for row in rows if row.get("error_occurred") and not row["error_message"].startswith("impossible: "))
    if failed:
        print(f"{prog}: {failed} row{'s' if failed > 1 else ''} failed (see ERROR OCCURRED above, "
              "error_message in the JSON)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
