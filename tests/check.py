#!/usr/bin/env python3
"""Checks that ctest runs on the lab programs, conclab-bench and scripts/report.

    check.py run [--expect K=V] [--min K=X] [--max K=X] [--count TEXT=N] -- CMD...
        run CMD, require exit 0 and a final summary line of key=value pairs
        meeting every condition
    check.py bad-args [--worker-flags] [--no-common] [--extra ARGS]... [--says "ARGS => TEXT"]... -- CMD...
        require `CMD --help` to exit 0 and every bad command line to exit 2
        with exactly one short line on stderr (containing TEXT for --says)
    check.py bench-json FILE NAME...
        require FILE to be Google Benchmark JSON holding every NAME
    check.py report-of SCRIPT DIR
        run scripts/report on DIR/cpp.json and DIR/python.json (a smoke run)
    check.py report SCRIPT FIXTURE_DIR WORK_DIR
        run scripts/report on the fixtures and check the tables it writes,
        and its one-line errors for missing and malformed input
    check.py per-task-us -- CMD...
        run conclab-bench CMD on micro/pool-apply-async: the console shows
        per_task_us as a plain number, and the JSON's agrees with real_time
"""
import argparse
import json
import pathlib
import re
import subprocess
import sys
import tempfile

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


def cmd_bench_json(args):
    try:
        doc = json.loads(pathlib.Path(args.file).read_text())
    except (OSError, json.JSONDecodeError) as e:
        fail(f"{args.file}: {e}")
        return
    names = {b["name"] for b in doc.get("benchmarks", [])}
    for name in args.names:
        if name not in names:
            fail(f"{args.file}: no row named {name} (have: {sorted(names)})")
    for b in doc.get("benchmarks", []):
        if b.get("real_time", 0) <= 0:
            fail(f"{b.get('name')}: real_time {b.get('real_time')}")


def cmd_report(args):
    script, fixtures, work = args.script, pathlib.Path(args.fixtures), pathlib.Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    out, merged = work / "REPORT.md", work / "latest.json"
    result = run([sys.executable, script, str(fixtures / "cpp.json"), str(fixtures / "python.json"),
                  "--out", str(out), "--json-out", str(merged), "--context", "git_revision=abc123"])
    if result.returncode != 0:
        fail(f"report on fixtures: exit {result.returncode}: {result.stderr}")
        return
    report = out.read_text()
    expected = [
        # the seed's demo line: 5005 / 1010 ms
        "serial 5.005 s, threaded 1.010 s, speed-up **4.955×**",
        # measured serial at 5 x 1000; wall ratio 1010 / 1020
        "| threaded | 5 | 1.010 s | 1.020 s | 0.990 | 4.96× | 4.91× |",
        # serial not run at 1000 x 100: speed-up against N x T, marked
        "| threaded | 1000 | 140.0 ms | 330.0 ms | 0.424 | ≈714.29× | ≈303.03× |",
        "| `micro/thread-create-join` | 50.0 µs | 100.0 µs | 0.500 |",
        # CPU-bound: 2.8 / 1.5 ms in C++, 300 / 310 ms in CPython (the GIL)
        "| threaded | 2 | 1.5 ms | 310.0 ms | 0.005 | 1.87× | 0.97× |",
        "- git revision: abc123",
        "![wall time against tasks at sleep_ms=100](plots/workers-sleep100.png)",
    ]
    for text in expected:
        if text not in report:
            fail(f"REPORT.md lacks: {text}")
    png = work / "plots" / "workers-sleep100.png"
    if not png.exists() or not png.read_bytes().startswith(b"\x89PNG"):
        fail(f"{png}: no PNG plot")
    doc = json.loads(merged.read_text())
    names = {b["name"] for b in doc["benchmarks"]}
    for name in ("workers/threaded/tasks:1000/sleep_ms:100", "python/workers/threaded/tasks:1000/sleep_ms:100"):
        if name not in names:
            fail(f"latest.json lacks {name}")
    # The merged file renders again on its own.
    again = run([sys.executable, script, str(merged), "--out", str(work / "again.md")])
    if again.returncode != 0 or (work / "again.md").read_text() != report:
        fail(f"re-rendering latest.json differs or fails: {again.stderr}")

    # A filtered run without serial rows: speed-ups unknown, no CPU plot, no failure.
    partial = work / "partial.json"
    partial.write_text(json.dumps({"benchmarks": [
        {"name": f"workers/threaded/tasks:{n}/work:cpu", "real_time": 1.5 * n, "time_unit": "ms"} for n in (1, 2)]}))
    r = run([sys.executable, script, str(partial), "--out", str(work / "partial.md")])
    if r.returncode != 0:
        fail(f"report of a run without serial rows: exit {r.returncode}: {r.stderr}")
    elif "CPU-bound speed-up" in (work / "partial.md").read_text():
        fail("report of a run without serial rows links a speed-up plot it cannot draw")

    # Bad input: one line naming the file and the problem, exit 2.
    bad_json = work / "malformed.json"
    bad_json.write_text('{"benchmarks": [')
    no_rows = work / "norows.json"
    no_rows.write_text('{"context": {}}')
    no_time = work / "notime.json"
    no_time.write_text('{"benchmarks": [{"name": "x", "time_unit": "ms"}]}')
    for path, problem in [(work / "missing.json", "cannot read"), (bad_json, "not valid JSON"),
                          (no_rows, "no 'benchmarks' list"), (no_time, "has no real_time")]:
        r = run([sys.executable, script, str(path), "--out", str(work / "bad.md")])
        lines = r.stderr.splitlines()
        if r.returncode != 2 or len(lines) != 1 or str(path) not in lines[0] or problem not in lines[0]:
            fail(f"report {path.name}: exit {r.returncode}, stderr {r.stderr!r}; expected 2 and '{problem}'")


def cmd_report_of(args):
    """scripts/report renders what a real (smoke) run of both benchmark programs wrote."""
    work = pathlib.Path(args.dir)
    out = work / "REPORT.md"
    r = run([sys.executable, args.script, str(work / "cpp.json"), str(work / "python.json"), "--out", str(out)])
    if r.returncode != 0:
        fail(f"report of {work}: exit {r.returncode}: {r.stderr}")
        return
    report = out.read_text()
    for text in ("## Sleep-bound workers", "### sleep_ms = 2", "| threaded | 3 |", "`micro/thread-create-join`"):
        if text not in report:
            fail(f"{out} lacks: {text}")


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
    p = sub.add_parser("bench-json")
    p.add_argument("file")
    p.add_argument("names", nargs="+")
    p = sub.add_parser("report-of")
    p.add_argument("script")
    p.add_argument("dir")
    p = sub.add_parser("report")
    p.add_argument("script")
    p.add_argument("fixtures")
    p.add_argument("work")
    args = parser.parse_args()
    {"run": cmd_run, "bad-args": cmd_bad_args, "bench-json": cmd_bench_json, "report": cmd_report,
     "report-of": cmd_report_of, "per-task-us": cmd_per_task_us}[args.command](args)
    if failures:
        print(f"{len(failures)} check(s) failed", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
