#!/usr/bin/env python3
"""Checks that ctest runs on the lab programs, conclab-bench and scripts/report.

    check.py run [--expect K=V] [--min K=X] [--max K=X] [--count TEXT=N] -- CMD...
        run CMD, require exit 0 and a final summary line of key=value pairs
        meeting every condition
    check.py bad-args [--worker-flags] [--no-common] [--extra ARGS]... [--says "ARGS => TEXT"]... -- CMD...
        require `CMD --help` to exit 0 and every bad command line to exit 2
        with exactly one short line on stderr (containing TEXT for --says)
    check.py bench-json [--impossible NAME]... FILE NAME...
        require FILE to be Google Benchmark JSON holding every NAME, measured,
        and every --impossible NAME, written as impossible ("impossible: ..."
        error_message: select() past FD_SETSIZE); no other row may fail
    check.py report-of SCRIPT DIR
        run scripts/report on DIR/cpp.json and DIR/python.json (a smoke run)
    check.py report SCRIPT FIXTURE_DIR WORK_DIR
        run scripts/report on the fixtures and check the tables it writes,
        and its one-line errors for missing and malformed input
    check.py per-task-us -- CMD...
        run conclab-bench CMD on micro/pool-apply-async: the console shows
        per_task_us as a plain number, and the JSON's agrees with real_time
    check.py start-method METHOD --row NAME... -- SCRIPT ARGS...
        run the Python program SCRIPT (writing JSON to {out}) with METHOD as
        multiprocessing's default start method; require exit 0 and every row
    check.py limited --nproc N [--ok ROW]... [--fail ROW]... [--stage FILE]... [--python] -- CMD...
        run a benchmark program CMD (writing its JSON to {out}) under
        RLIMIT_NPROC = N as a spare uid, and require every --ok row measured,
        every --fail row present with its error, exit status 1, and nothing of
        the run left alive afterwards
"""
import argparse
import json
import os
import re
import pathlib
import resource
import shutil
import subprocess
import sys
import tempfile
import time

TIMEOUT_S = 120
failures = []


def fail(message):
    failures.append(message)
    print(f"FAIL: {message}", file=sys.stderr)


def run(cmd, timeout=TIMEOUT_S):
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        fail(f"{' '.join(cmd)}: still running after {timeout} s")
        sys.exit(1)


def summary(stdout):
    """The last line of key=value pairs, as a dict."""
    lines = [l for l in stdout.splitlines() if l.strip()]
    if not lines:
        return {}
    pairs = [p.split("=", 1) for p in lines[-1].split()]
    return {k: v for k, v in pairs} if all(len(p) == 2 for p in pairs) else {}


def pairs(items):
    return [item.split("=", 1) for item in items]


def cmd_run(args):
    result = run(args.cmd)
    sys.stdout.write(result.stdout)
    sys.stderr.write(result.stderr)
    if result.returncode != 0:
        fail(f"exit status {result.returncode}, expected 0")
    found = summary(result.stdout)
    if not found:
        fail("no key=value summary line at the end of stdout")
    for key, want in pairs(args.expect):
        if found.get(key) != want:
            fail(f"{key}={found.get(key)}, expected {want}")
    for key, bound in pairs(args.min):
        if key not in found or float(found[key]) < float(bound):
            fail(f"{key}={found.get(key)}, expected at least {bound}")
    for key, bound in pairs(args.max):
        if key not in found or float(found[key]) > float(bound):
            fail(f"{key}={found.get(key)}, expected at most {bound}")
    for text, count in pairs(args.count):
        # Occurrences, not lines: Python's print() writes the text and the
        # newline separately, so lines from several threads can interleave.
        seen = result.stdout.count(text)
        if seen != int(count):
            fail(f"'{text}' printed {seen} times, expected {count}")


WORKER_BAD = [["--tasks", "0"], ["--tasks", "-1"], ["--tasks", "abc"], ["--tasks", "2.5"],
              ["--tasks", "99999999999"], ["--sleep-ms", "0"], ["--sleep-ms", "-5"], ["--sleep-ms", "x"],
              ["--tasks"], ["--no-such-flag"]]
COMMON_BAD = [["--no-such-flag"], ["--no-such-flag=3"]]


# A usage error is one plain sentence: longer than this, it is not (a
# 309-digit bound, a dump of every choice).
MAX_USAGE_LINE = 200


def cmd_bad_args(args):
    help_run = run(args.cmd + ["--help"])
    if help_run.returncode != 0 or not help_run.stdout.strip():
        fail(f"--help: exit {help_run.returncode} with {len(help_run.stdout)} bytes of usage, expected 0 and usage")
    says = [item.split(" => ", 1) for item in args.says]
    common = [] if args.no_common else WORKER_BAD if args.worker_flags else COMMON_BAD
    for bad, text in [(b, None) for b in common + [a.split() for a in args.extra]] + [(a.split(), t) for a, t in says]:
        result = run(args.cmd + bad)
        lines = result.stderr.splitlines()
        if result.returncode != 2:
            fail(f"{' '.join(bad)}: exit {result.returncode}, expected 2 (stderr: {result.stderr!r})")
        elif len(lines) != 1:
            fail(f"{' '.join(bad)}: {len(lines)} lines on stderr, expected one: {result.stderr!r}")
        elif len(lines[0]) > MAX_USAGE_LINE:
            fail(f"{' '.join(bad)}: a {len(lines[0])}-character line, expected one short sentence: {lines[0]!r}")
        elif text is not None and text not in lines[0]:
            fail(f"{' '.join(bad)}: {lines[0]!r} does not say {text!r}")
        else:
            print(f"ok: {' '.join(bad)} -> {lines[0]}")


def cmd_per_task_us(args):
    """per_task_us is a plain number of microseconds, on the console and in the JSON."""
    with tempfile.TemporaryDirectory() as work:
        out = pathlib.Path(work) / "out.json"
        result = run(args.cmd + ["--benchmark_filter=^micro/pool-apply-async/", "--benchmark_out=" + str(out),
                                 "--benchmark_out_format=json"])
        sys.stdout.write(result.stdout)
        if result.returncode != 0:
            fail(f"exit {result.returncode}: {result.stderr}")
            return
        shown = re.search(r"per_task_us=(\S+)", result.stdout)
        if not shown:
            fail("the console shows no per_task_us")
        elif not re.fullmatch(r"[0-9.]+[kMGTmunp]?", shown[1]):
            fail(f"the console shows per_task_us={shown[1]}: expected a plain number (microseconds, no unit)")
        row = json.loads(out.read_text())["benchmarks"][0]
        per_batch_us = row["real_time"] * {"ns": 1e-3, "us": 1.0, "ms": 1e3, "s": 1e6}[row["time_unit"]]
        expected = per_batch_us / 1000  # a batch is 1,000 tasks
        if not abs(row["per_task_us"] - expected) <= 0.1 * expected:
            fail(f"JSON per_task_us={row['per_task_us']}, expected about {expected:.3f} (real_time / 1000)")
        else:
            print(f"ok: per_task_us={row['per_task_us']:.3f} (real_time / 1000 = {expected:.3f})")


def cmd_start_method(args):
    """Run a Python program as if METHOD were multiprocessing's default (forkserver: CPython 3.14 on Linux)."""
    with tempfile.TemporaryDirectory() as work:
        out = pathlib.Path(work) / "out.json"
        script, rest = args.cmd[0], [c.replace("{out}", str(out)) for c in args.cmd[1:]]
        code = ("import multiprocessing, runpy, sys\n"
                f"multiprocessing.set_start_method({args.method!r})\n"
                f"sys.argv = {[script] + rest!r}\n"
                f"runpy.run_path({script!r}, run_name='__main__')\n")
        result = run([sys.executable, "-c", code])
        sys.stdout.write(result.stdout)
        sys.stderr.write(result.stderr)
        if result.returncode != 0:
            fail(f"with {args.method} as the default start method: exit {result.returncode}")
            return
        rows = {b["name"]: b for b in json.loads(out.read_text())["benchmarks"]}
        for name in args.row:
            if name not in rows or rows[name].get("error_occurred"):
                fail(f"row {name}: {rows.get(name, 'missing')}")
            else:
                print(f"ok: {name}")


def cmd_bench_json(args):
    try:
        doc = json.loads(pathlib.Path(args.file).read_text())
    except (OSError, json.JSONDecodeError) as e:
        fail(f"{args.file}: {e}")
        return
    names = {b["name"] for b in doc.get("benchmarks", [])}
    for name in args.names + args.impossible:
        if name not in names:
            fail(f"{args.file}: no row named {name} (have: {sorted(names)})")
    for b in doc.get("benchmarks", []):
        if b.get("run_type") == "aggregate":
            continue  # Google Benchmark's mean/median/stddev/cv of the repetitions
        impossible = str(b.get("error_message", "")).startswith("impossible: ")
        if b.get("name") in args.impossible and not impossible:
            fail(f"{b.get('name')}: expected impossible, got {b}")
        elif not impossible and b.get("real_time", 0) <= 0:
            fail(f"{b.get('name')}: real_time {b.get('real_time')} {b.get('error_message', '')}")


def plot_links(report):
    """The plots a report links, as "plots/NAME.png"."""
    return re.findall(r"\]\((plots/[^)]+\.png)\)", report)


def table_lines(report, marker):
    return [line for line in report.splitlines() if line.startswith("|") and marker in line]


def cmd_report(args):
    script, fixtures, work = args.script, pathlib.Path(args.fixtures), pathlib.Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    out, merged = work / "REPORT.md", work / "latest.json"
    # Every fixture row has 5 repetitions at x1.0, 0.99, 1.06, 0.995, 1.04 of its old value: the median is that
    # value, the mean 1.7% above it, every repetition within 6% of the median. CPython's threaded 1000 x 100 ms is
    # the noisy row (x0.9 to x1.3: 40%). The reference has micro/thread-create-join twice as fast in C++ and
    # lacks CPython's.
    reference = fixtures / "reference.json"
    cmd = [sys.executable, script, str(fixtures / "cpp.json"), str(fixtures / "python.json"), "--out", str(out),
           "--json-out", str(merged), "--reference", str(reference), "--context", "git_revision=abc123",
           "--context", "load_before_build=0.21 1.63 1.81", "--context", "cores=2"]
    result = run(cmd)
    if result.returncode != 0:
        fail(f"report on fixtures: exit {result.returncode}: {result.stderr}")
        return
    report = out.read_text()
    expected = [
        # the seed's demo line: 5005 / 1010 ms (medians; the means would be 5.090 s and 1.027 s)
        "serial 5.005 s, threaded 1.010 s, speed-up **4.955×**",
        # median ±spread, C++ / Python, vs reference (1.00x: the same medians), speed-ups
        "| threaded | 5 | 1.010 s ±6.0% | 1.020 s ±6.0% | 0.990 | 1.00× | 1.00× | 4.96× | 4.91× |",
        # serial not run at 1000 x 100: speed-up against N x T, marked; CPython's repetitions 40% apart: noisy
        "| threaded | 1000 | 140.0 ms ±6.0% | 330.0 ms ±30% ⚠ | 0.424 | 1.00× | 1.00× | ≈714.29× | ≈303.03× |",
        # twice the reference's median in C++; the reference has no CPython row: blank
        "| `micro/thread-create-join` | 50.0 µs ±6.0% | 100.0 µs ±6.0% | 0.500 | 2.00× |  |",
        # CPU-bound: 2.8 / 1.5 ms in C++, 300 / 310 ms in CPython (the GIL); both step counts told
        "| threaded | 2 | 1.5 ms ±6.0% | 310.0 ms ±6.0% | 0.0048 | 1.00× | 1.00× | 1.87× | 0.97× |",
        "C++ 75,000,000 steps; Python 1,500,000 steps",
        # one task's time measured from the serial rows (2.8 ms / 2, 300 ms / 2): too far apart, said
        "In this run one task took (serial, over its tasks): C++ 1.4 ms; Python 150.0 ms. **These differ by more "
        "than 1.5×**",
        "- git revision: abc123",
        "- load average before the build: 0.21 / 1.63 / 1.81 (1, 5, 15 min)",
        "- Python: CPython 3.11.7",
        "- compiler: g++ 12.2.0",
        "(repetitions: 5 repetitions for 37 rows)",
        # the empty loop's median beside the paragraph on Debian's debug library
        "The row `micro/empty` times an empty loop body: what the library adds per iteration. In this run it is "
        "**0.4 ns ±5.0%**",
        "the Python tutorials in `../shared/seeds`",
        f"concurrency min(N, 100): one worker per task, at most 100",
        "![wall time against tasks at sleep_ms=100, one panel per family](plots/workers-sleep100.png)",
        "[plots/workers-sleep100.svg](plots/workers-sleep100.svg)",
        "(plots/seed-demo.png)",
        "(plots/workers-cpu.png)",
        # failed rows: listed with their message, "failed" in their cells, the rest still compared
        "## Failed rows",
        "| `workers/forked/tasks:1000/sleep_ms:100` | C++ | fork: Resource temporarily unavailable |",
        "| `micro/fork-wait` | Python | BlockingIOError: [Errno 11] Resource temporarily unavailable |",
        "| forked | not run | failed |",
        "| forked | 1000 | failed | – | – |  |  |",
        "| `micro/fork-wait` | 200.0 µs ±6.0% | failed | – | 1.00× |  |",
        # the spin window: latency gain (off - on) beside its CPU cost (on - off), per operation
        "| `micro/fork-wait` (fork + `Process::join`) | 200.0 µs ±6.0% | 230.0 µs ±6.0% | +30.0 µs (13%) | 150.0 µs "
        "| 120.0 µs | +30.0 µs |",
        "| `micro/pool-apply` (`pool.apply` round trip) | 15.0 µs ±6.0% | 20.0 µs ±6.0% | +5.0 µs (25%) | 40.0 µs "
        "| 22.0 µs | +18.0 µs |",
        "first poll for up to 50 µs (the spin window",
        "**Reading CPU (`cpu_s`) with the spin in mind.**",
        "so these rows have no Python peer",
        # selectors: C++ beside Python, select past FD_SETSIZE impossible (not failed), the growth
        # from the fewest descriptors to the most, the plot; the shutdown row under its merged name
        "| select | 10 | 2.0 µs ±6.0% | 10.0 µs ±6.0% | 0.200 | 1.00× | 1.00× |",
        "| select | 10,000 | impossible | impossible | – |  |  |",
        "| epoll | 10,000 | 1.0 µs ±6.0% | 5.0 µs ±6.0% | 0.200 | 1.00× | 1.00× |",
        "- **select**: C++ 2.0 µs at 10 → 70.0 µs at 1,000 (**×35.0**); "
        "CPython 10.0 µs at 10 → 100.0 µs at 1,000 (**×10.0**)",
        "- **epoll**: C++ 1.0 µs at 10 → 1.0 µs at 10,000 (**×1.0**)",
        "![one wait against registered descriptors, per back end](plots/selectors.png)",
        "the mean of 16 shutdowns",
        "| `socketserver/shutdown` | 50.0 µs ±6.0% | 250.0 ms ±6.0% | 0.0002 | 1.00× | 1.00× |",
        "CPython's `shutdown()` took **5,000 times** as long as conclab's.",
        "- `workers/threaded/tasks:1000/sleep_ms:100` (Python): median 330.0 ms, repetitions from 297.0 ms to 429.0 ms",
        # fan-out with a service time: the floor (no service time) at the same C, each design against its
        # ideal (0.1 / 0.125 s) and against its best, ideal + the floor's 20 ms ((0.1 + 0.02) / 0.125 s); a
        # pool below the 0.9 bar is named
        "| floor | 1,000 | 20.0 ms ±6.0% | – | – |  |  | – | – | – | – | 19.0 | – | 0 | – |",
        "| epoll | 1,000 | 125.0 ms ±6.0% | – | – |  |  | 0.800 | – | 0.960 | – | 118.8 | – | 0 | – |",
        "- 1,000 clients × 100 ms: the floor alone takes 20.0 ms (20.0 µs a connection, 20% of the service "
        "time); event loops, efficiency 0.800 (**below 0.9: epoll**), vs best 0.960; pools, efficiency 0.838 "
        "(**below 0.9: prefork-accept**), vs best 0.840 (**below 0.9: prefork-accept**)",
    ]
    for text in expected:
        if text not in report:
            fail(f"REPORT.md lacks: {text}")
    # Medians, never means: the mean of the demo's serial repetitions (5.090 s) appears nowhere.
    if "5.090 s" in report or "1.027 s" in report:
        fail("REPORT.md shows a mean of the repetitions, not their median")
    # The noisy mark on exactly the noisy row: its line in its table and its cell at a glance.
    marked = table_lines(report, "⚠")
    if len(marked) != 2 or not all("330.0 ms ±30% ⚠" in line and line.count("⚠") == 1 for line in marked):
        fail(f"the noisy mark is not on exactly the noisy row: {marked}")
    if "⚠ 1 cell above" not in report:
        fail("REPORT.md does not count one noisy cell")
    if "impossible: " in report or "| `selectors/" in report:
        fail("REPORT.md lists an impossible row (select past FD_SETSIZE) as a failed one")
    # The legend links the labs: every link resolves from where the report is (in the repository) or,
    # outside it, from results/reference/, where the report's links start then.
    repo = pathlib.Path(script).resolve().parent.parent
    base = out.parent.resolve() if repo in out.parent.resolve().parents else repo / "results" / "reference"
    labs = re.findall(r"\]\(([./]*labs/[^)]+)\)", report)
    if len(labs) < 8:
        fail(f"the legend links {len(labs)} labs, expected one per model (8)")
    for link in labs:
        if not (base / link).is_dir():
            fail(f"legend link {link} does not resolve from {base}")
    # Every linked plot exists as PNG, with an SVG beside it; the seed's demo is one of them.
    links = plot_links(report)
    for name in ("plots/workers-sleep100.png", "plots/workers-cpu.png", "plots/seed-demo.png", "plots/selectors.png"):
        if name not in links:
            fail(f"REPORT.md does not link {name}")
    for link in links:
        png, svg = work / link, (work / link).with_suffix(".svg")
        if not png.exists() or not png.read_bytes().startswith(b"\x89PNG"):
            fail(f"{png}: no PNG plot")
        if not svg.exists() or b"<svg" not in svg.read_bytes()[:2000]:
            fail(f"{svg}: no SVG beside the PNG")
    doc = json.loads(merged.read_text())
    names = {b["name"] for b in doc["benchmarks"]}
    for name in ("workers/threaded/tasks:1000/sleep_ms:100", "python/workers/threaded/tasks:1000/sleep_ms:100",
                 "workers/forked/tasks:1000/sleep_ms:100", "python/micro/fork-wait", "socketserver/shutdown",
                 "selectors/select/fds:10000"):
        if name not in names:
            fail(f"latest.json lacks {name}")
    if sum(b["name"] == "micro/thread-create-join" for b in doc["benchmarks"]) != 5:
        fail("latest.json does not keep the 5 repetitions of micro/thread-create-join")
    for row in doc["benchmarks"]:
        if row["name"] == "workers/forked/tasks:1000/sleep_ms:100" and not row.get("error_message"):
            fail(f"latest.json keeps the failed row without its error: {row}")
    # The merged file renders again on its own, the same.
    again = run([sys.executable, script, str(merged), "--out", str(work / "again.md"), "--reference", str(reference)])
    if again.returncode != 0 or (work / "again.md").read_text() != report:
        fail(f"re-rendering latest.json differs or fails: {again.stderr}")
    # The reference given is the run itself: no vs-reference column.
    itself = run([sys.executable, script, str(merged), "--out", str(work / "itself.md"), "--reference", str(merged)])
    if itself.returncode != 0:
        fail(f"report with itself as reference: exit {itself.returncode}: {itself.stderr}")
    elif "vs reference" in (work / "itself.md").read_text():
        fail("report with itself as the reference shows a vs-reference column")
    # Without --reference: no such column either, and a full run says nothing of being partial.
    if "Partial run" in report:
        fail("a run without a filter says it is partial")

    # A filtered run without serial rows: speed-ups unknown, no CPU plot, no failure; it says it is partial.
    partial = work / "partial.json"
    partial.write_text(json.dumps({"benchmarks": [
        {"name": f"workers/threaded/tasks:{n}/work:cpu", "real_time": 1.5 * n, "time_unit": "ms"} for n in (1, 2)]}))
    r = run([sys.executable, script, str(partial), "--out", str(work / "partial.md"), "--context", "filter=work:cpu"])
    if r.returncode != 0:
        fail(f"report of a run without serial rows: exit {r.returncode}: {r.stderr}")
    else:
        text = (work / "partial.md").read_text()
        if "CPU-bound speed-up" in text:
            fail("report of a run without serial rows links a speed-up plot it cannot draw")
        if "> **Partial run.** Only the rows matching `--filter work:cpu` ran: `workers/` (2 rows)." not in \
                text.split("## Legend")[0]:
            fail("report of a filtered run does not say at the top that it is partial and what ran")

    # Bad input: one line naming the file and the problem, exit 2.
    bad_json = work / "malformed.json"
    bad_json.write_text('{"benchmarks": [')
    no_rows = work / "norows.json"
    no_rows.write_text('{"context": {}}')
    no_time = work / "notime.json"
    no_time.write_text('{"benchmarks": [{"name": "x", "time_unit": "ms"}]}')
    no_message = work / "nomessage.json"
    no_message.write_text('{"benchmarks": [{"name": "x", "error_occurred": true, "real_time": 0, "time_unit": "ms"}]}')
    for path, problem in [(work / "missing.json", "cannot read"), (bad_json, "not valid JSON"),
                          (no_rows, "no 'benchmarks' list"), (no_time, "has no real_time"),
                          (no_message, "has no name or error_message")]:
        r = run([sys.executable, script, str(path), "--out", str(work / "bad.md")])
        lines = r.stderr.splitlines()
        if r.returncode != 2 or len(lines) != 1 or str(path) not in lines[0] or problem not in lines[0]:
            fail(f"report {path.name}: exit {r.returncode}, stderr {r.stderr!r}; expected 2 and '{problem}'")
    # A bad reference: the same one line, naming the flag and the file.
    for path, problem in [(work / "missing.json", "cannot read"), (bad_json, "not valid JSON")]:
        r = run([sys.executable, script, str(fixtures / "cpp.json"), "--reference", str(path), "--out",
                 str(work / "bad.md")])
        lines = r.stderr.splitlines()
        if r.returncode != 2 or len(lines) != 1 or f"--reference {path}" not in lines[0] or problem not in lines[0]:
            fail(f"report --reference {path.name}: exit {r.returncode}, stderr {r.stderr!r}; expected 2 and "
                 f"'--reference {path}: {problem}'")


def cmd_report_of(args):
    """scripts/report renders what a real (smoke) run of both benchmark programs wrote."""
    work = pathlib.Path(args.dir)
    out = work / "REPORT.md"
    r = run([sys.executable, args.script, str(work / "cpp.json"), str(work / "python.json"), "--out", str(out)])
    if r.returncode != 0:
        fail(f"report of {work}: exit {r.returncode}: {r.stderr}")
        return
    report = out.read_text()
    for text in ("## Sleep-bound workers", "### sleep_ms = 2", "| threaded | 3 |", "`micro/thread-create-join`",
                 "### The spin window: latency bought, CPU paid", "`micro/fork-wait/spin:off`"):
        if text not in report:
            fail(f"{out} lacks: {text}")
    # Both spin pairs measured, each with its CPU per operation (no "–" in the line).
    for start in ("| `micro/fork-wait` (fork", "| `micro/pool-apply` (`pool.apply`"):
        line = next((l for l in report.splitlines() if l.startswith(start)), None)
        if line is None or "–" in line:
            fail(f"{out}: spin row {start!r}: {line!r}, expected wall and CPU with the spin on and off")


# --- limited: a benchmark run under a low process limit -----------------------------

SKIP = 77  # ctest's SKIP_RETURN_CODE for these checks


def uids_in_use():
    """The real uids of every process on the machine."""
    uids = set()
    for status in pathlib.Path("/proc").glob("[0-9]*/status"):
        try:
            for line in status.read_text().splitlines():
                if line.startswith("Uid:"):
                    uids.add(int(line.split()[1]))
                    break
        except OSError:
            pass  # the process ended meanwhile
    return uids


def pids_of(uid):
    pids = []
    for status in pathlib.Path("/proc").glob("[0-9]*/status"):
        try:
            fields = dict(line.split(":", 1) for line in status.read_text().splitlines() if ":" in line)
        except OSError:
            continue
        if int(fields.get("Uid", "-1").split()[0]) == uid:
            pids.append((int(status.parent.name), fields.get("Name", "?").strip()))
    return pids


def spare_uid():
    """A uid that no process uses and no user owns: RLIMIT_NPROC then counts only our run.

    Root ignores RLIMIT_NPROC, and a uid shared with other processes (another
    test in parallel) would make the limit count theirs too.
    """
    in_use = uids_in_use()
    try:
        import pwd
        in_use |= {u.pw_uid for u in pwd.getpwall()}
    except ImportError:
        pass
    start = 40000 + os.getpid() % 20000  # tests running at once start far apart
    for i in range(20000):
        uid = 40000 + (start - 40000 + i) % 20000
        if uid not in in_use:
            return uid
    raise RuntimeError("no spare uid in [40000, 60000)")


def as_user(uid, nproc):
    """subprocess arguments that run a command as uid (no groups) with RLIMIT_NPROC = nproc."""
    def limit():
        resource.setrlimit(resource.RLIMIT_NPROC, (nproc, nproc))
    return dict(user=uid, group=uid, extra_groups=[], preexec_fn=limit)


def runs_as(uid, cmd):
    """Whether uid can start cmd (it may live under a directory only root can enter, such as /root)."""
    try:
        return subprocess.run(cmd, capture_output=True, timeout=60, **as_user(uid, 64)).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def cmd_limited(args):
    if os.geteuid() != 0:
        print("SKIP: needs root, to run the benchmark as a spare uid: RLIMIT_NPROC counts every process of "
              "a uid, so under your own uid the limit would depend on what else you run")
        sys.exit(SKIP)
    uid = spare_uid()
    work = pathlib.Path(tempfile.mkdtemp(prefix="conclab-limited-"))
    try:
        os.chown(work, uid, uid)
        # The programs, copied where the spare uid can read them (a clone may be in /root).
        cmd = list(args.cmd)
        for path in args.stage:
            copy = work / pathlib.Path(path).name
            shutil.copy(path, copy)
            os.chmod(copy, 0o755)
            cmd = [str(copy) if c == path else c for c in cmd]
        if args.python and not runs_as(uid, [cmd[0], "-c", "pass"]):
            # A Python under /root (pyenv) is out of the spare uid's reach: the system's will do.
            system = next((p for p in ("/usr/bin/python3", "/bin/python3") if runs_as(uid, [p, "-c", "pass"])), None)
            if system is None:
                print(f"SKIP: uid {uid} can run neither {cmd[0]} nor /usr/bin/python3")
                sys.exit(SKIP)
            print(f"note: uid {uid} cannot run {cmd[0]}; using {system}")
            cmd[0] = system
        out = work / "out.json"
        cmd = [c.replace("{out}", str(out)) for c in cmd]
        print(f"as uid {uid} with RLIMIT_NPROC={args.nproc}: {' '.join(cmd)}", flush=True)
        try:
            result = subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT_S, cwd=work,
                                    **as_user(uid, args.nproc))
        except subprocess.TimeoutExpired:
            fail(f"still running after {TIMEOUT_S} s")
            result = None
        if result is not None:
            sys.stdout.write(result.stdout)
            sys.stderr.write(result.stderr)
            if result.returncode != 1:
                fail(f"exit status {result.returncode}, expected 1 (some rows failed)")
        # Nothing of the run may outlive it: every child reaped, every pool ended.
        deadline = time.monotonic() + 5
        while pids_of(uid) and time.monotonic() < deadline:
            time.sleep(0.05)
        left = pids_of(uid)
        if left:
            fail(f"processes of the run still alive after it ended: {left}")
            for pid, _ in left:  # ours: the uid is spare and was picked above
                try:
                    os.kill(pid, 9)
                except ProcessLookupError:
                    pass
        if result is None:
            return
        try:
            doc = json.loads(out.read_text())
        except (OSError, json.JSONDecodeError) as e:
            fail(f"the JSON of the run is not whole: {e}")
            return
        rows = {b["name"].replace("/real_time", ""): b for b in doc.get("benchmarks", [])}
        for name in args.ok:
            row = rows.get(name)
            if row is None:
                fail(f"no row {name} (have: {sorted(rows)})")
            elif row.get("error_occurred") or not row.get("real_time", 0) > 0:
                fail(f"{name}: expected a measured row, got {row}")
            else:
                print(f"ok: {name} measured")
        for name in args.fail:
            row = rows.get(name)
            if row is None:
                fail(f"no row {name} (have: {sorted(rows)})")
            elif not row.get("error_occurred") or not row.get("error_message"):
                fail(f"{name}: expected a failed row with its error_message, got {row}")
            else:
                print(f"ok: {name} failed with: {row['error_message']}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main():
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("run")
    for flag in ("expect", "min", "max", "count"):
        p.add_argument(f"--{flag}", action="append", default=[])
    p.add_argument("cmd", nargs="+")
    p = sub.add_parser("bad-args")
    p.add_argument("--worker-flags", action="store_true")
    p.add_argument("--no-common", action="store_true", help="only --extra and --says (CMD passes unknown flags on)")
    p.add_argument("--extra", action="append", default=[], help="one more bad command line (space-separated)")
    p.add_argument("--says", action="append", default=[], help="'ARGS => TEXT': a bad command line and its message")
    p.add_argument("cmd", nargs="+")
    p = sub.add_parser("per-task-us")
    p.add_argument("cmd", nargs="+")
    p = sub.add_parser("start-method")
    p.add_argument("method")
    p.add_argument("--row", action="append", default=[])
    p.add_argument("cmd", nargs="+")
    p = sub.add_parser("bench-json")
    p.add_argument("--impossible", action="append", default=[], metavar="NAME")
    p.add_argument("file")
    p.add_argument("names", nargs="+")
    p = sub.add_parser("report-of")
    p.add_argument("script")
    p.add_argument("dir")
    p = sub.add_parser("report")
    p.add_argument("script")
    p.add_argument("fixtures")
    p.add_argument("work")
    p = sub.add_parser("limited")
    p.add_argument("--nproc", type=int, required=True)
    p.add_argument("--ok", action="append", default=[], help="a row that must be measured")
    p.add_argument("--fail", action="append", default=[], help="a row that must fail with its error")
    p.add_argument("--stage", action="append", default=[], help="a file of CMD to copy where the spare uid can read it")
    p.add_argument("--python", action="store_true", help="CMD[0] is a Python interpreter (another may do)")
    p.add_argument("cmd", nargs="+")
    args = parser.parse_args()
    {"run": cmd_run, "bad-args": cmd_bad_args, "bench-json": cmd_bench_json, "report": cmd_report,
     "report-of": cmd_report_of, "limited": cmd_limited, "per-task-us": cmd_per_task_us,
     "start-method": cmd_start_method}[args.command](args)
    if failures:
        print(f"{len(failures)} check(s) failed", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
