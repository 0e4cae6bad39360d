#!/usr/bin/env python3
"""Checks of scripts/compare and of scripts/bench's run folders (ctest, tests/bench_scripts.cmake).

    compare_check.py pvalues --compare scripts/compare
        the U test's p-values against hand-computed ones and a brute-force count
    compare_check.py verdicts --compare scripts/compare --fixtures tests/fixtures/compare
        fixture runs A and B: exactly the row made 2x slower is "slower"; the
        3% row, the 1-repetition and 3-repetition rows and the noise row "same"
    compare_check.py bad-input --compare scripts/compare --fixtures tests/fixtures/compare
        a missing file, a folder that is not a run, bad JSON, no row in common,
        a bad flag: exit 2 and one line naming it
    compare_check.py bench-runs --repo ROOT
        scripts/bench in a temporary clone of ROOT (with ROOT's scripts), the
        benchmark programs replaced by `fake-runner`: run folders, results/latest,
        git status clean, the reference untouched unless --update-reference
    compare_check.py shm-leaks --script scripts/shm-leaks --test scripts/test
        scripts/test's /dev/shm check compares before and after: a conclab
        segment planted in /dev/shm before is not reported, one made after
        is, by name; scripts/test snapshots before ctest and compares after
    compare_check.py names --scripts scripts
        benchdata.canonical: every suffix Google Benchmark adds to a row's name is dropped
    compare_check.py fake-runner NAME OUT COMMAND...
        (for scripts/bench, through CONCLAB_BENCH_RUNNER) write OUT as benchmark
        program NAME would, a few rows, honouring the command's filter
"""
import argparse
import hashlib
import importlib.machinery
import importlib.util
import itertools
import json
import math
import os
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile

TIMEOUT_S = 120
failures = []


def check(condition, message):
    if not condition:
        failures.append(message)
        print(f"FAIL: {message}", file=sys.stderr)
    return condition


def load_compare(path):
    loader = importlib.machinery.SourceFileLoader("compare_under_test", str(path))
    spec = importlib.util.spec_from_loader(loader.name, loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


def run(cmd, cwd=None, env=None):
    return subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=TIMEOUT_S)


# --- p-values ------------------------------------------------------------------------

def brute_force_p(a, b):
    """Two-sided exact p by trying every split of the pooled values (no ties)."""
    pooled, n, m = a + b, len(a), len(b)

    def u_of(ys):
        xs = [v for v in pooled if v not in ys]
        return sum(1 for x in xs for y in ys if y > x)

    observed = u_of(b)
    extreme = min(observed, n * m - observed)
    splits = [u_of(list(ys)) for ys in itertools.combinations(pooled, m)]
    return sum(1 for u in splits if min(u, n * m - u) <= extreme) / len(splits)


def cmd_pvalues(args):
    c = load_compare(args.compare)
    # Completely separated, 5 vs 5: only 2 of the C(10,5) = 252 orderings are as extreme.
    u, p, method = c.mann_whitney([1, 2, 3, 4, 5], [6, 7, 8, 9, 10])
    check((u, method) == (25, "exact") and abs(p - 2 / 252) < 1e-12, f"5 vs 5 separated: {u, p, method}, expected "
          f"(25, {2 / 252}, exact)")
    u, p, method = c.mann_whitney([6, 7, 8, 9, 10], [1, 2, 3, 4, 5])
    check(u == 0 and abs(p - 2 / 252) < 1e-12, f"5 vs 5 separated the other way: {u, p}, expected (0, {2 / 252})")
    u, p, method = c.mann_whitney([1, 2, 3], [4, 5, 6])
    check(abs(p - 0.1) < 1e-12, f"3 vs 3 separated: p = {p}, expected 2/20 = 0.1")
    u, p, method = c.mann_whitney([1], [2])
    check(p == 1.0, f"1 vs 1: p = {p}, expected 1")
    # Interleaved 5 vs 5: U_B = 1+2+3+4+5 = 15 of 25, U_A = 10; P(U <= 10) = 87/252 = 0.345 (the
    # number of the 252 orderings with U = 0..10: 1 1 2 3 5 7 9 11 14 16 18, as in tables of U).
    u, p, method = c.mann_whitney([1, 3, 5, 7, 9], [2, 4, 6, 8, 10])
    check(u == 15 and abs(p - 2 * 87 / 252) < 1e-12, f"5 vs 5 interleaved: {u, p}, expected (15, {174 / 252})")
    # Ties: [1, 2, 2] vs [2, 3, 4]: ranks 1, 3, 3 | 3, 5, 6, so U_B = 14 - 6 = 8 of 9, mean 4.5;
    # the tie of three 2s: variance 9/12 * (7 - 24/30) = 4.65; z = (3.5 - 0.5) / sqrt(4.65).
    u, p, method = c.mann_whitney([1, 2, 2], [2, 3, 4])
    expected = math.erfc(3 / math.sqrt(4.65) / math.sqrt(2))
    check(u == 8 and method == "normal" and abs(p - expected) < 1e-12,
          f"ties 3 vs 3: {u, p, method}, expected (8, {expected:.6f} = 0.164, normal)")
    check(c.mann_whitney([5, 5, 5], [5, 5, 5])[1] == 1.0, "all equal: p should be 1")
    # Exact against a count of every split, for uneven sizes.
    for a, b in (([3.1, 1.2, 7.7, 4.4], [2.5, 8.8, 9.1, 6.0, 5.3, 0.4]), ([1.5, 2.5, 3.5, 10.5, 11.5], [4.0, 5.0, 6.0]),
                 ([0.3, 0.9, 0.5, 0.7, 0.2, 0.8, 0.6], [1.1, 0.4, 1.3, 1.2, 0.1, 1.0])):
        _, p, method = c.mann_whitney(a, b)
        want = brute_force_p(a, b)
        check(method == "exact" and abs(p - want) < 1e-12, f"{a} vs {b}: p = {p} ({method}), every split: {want}")
    # The smallest p n vs m repetitions can reach, as the output's header says.
    for (n, m), want in (((1, 1), 1.0), ((3, 3), 0.1), ((4, 4), 2 / 70), ((5, 5), 2 / 252)):
        check(abs(c.smallest_p(n, m) - want) < 1e-12, f"smallest p of {n} vs {m}: {c.smallest_p(n, m)}, expected {want}")
    # The verdict rule: a significant 10% drop is faster; a significant 3% rise is not slower.
    a = [100.0, 101.0, 99.0, 100.5, 99.5]
    check(c.verdict(a, [x * 0.9 for x in a], 0.05, 0.05)[0] == "faster", "10% faster, separated: not 'faster'")
    check(c.verdict(a, [x + 3.5 for x in a], 0.05, 0.05)[0].startswith("same (significant"),
          "3% slower, separated: not 'same (significant, ...)'")
    check(c.verdict(a, [x + 3.5 for x in a], 0.05, 0.02)[0] == "slower", "3% slower with --threshold 0.02: not 'slower'")
    check(c.verdict([1, 2, 3, 4], [5, 6, 7], 0.05, 0.05)[0] == "untested (too few repetitions)",
          "4 vs 3 (smallest p 2/35 = 0.057): not too few")
    check(c.verdict([1, 2, 3, 4], [5, 6, 7, 8], 0.05, 0.05)[0] == "slower", "4 vs 4 separated, 2x: not 'slower'")


# --- the fixture runs ----------------------------------------------------------------

def table_rows(text):
    """{row: verdict} of the Markdown comparison table."""
    rows = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("| ") and len(cells) == 7 and cells[0] != "row":
            rows[cells[0]] = cells[6].strip("*")
    return rows


def cmd_verdicts(args):
    fixtures = pathlib.Path(args.fixtures)
    with tempfile.TemporaryDirectory() as tmp:
        out = pathlib.Path(tmp) / "compare.md"
        result = run([sys.executable, args.compare, fixtures / "a.json", fixtures / "b", "--out", out])
        check(result.returncode == 0, f"compare a.json b/: exit {result.returncode}, expected 0: {result.stderr}")
        rows = table_rows(result.stdout)
        expected = {
            "micro/thread-create-join": "slower",  # 2x, 5 vs 5, separated
            "micro/rlock-acquire-release": "same (significant, within ±5%)",  # 3%, separated: p = 0.008
            "workers/threaded/tasks:5/sleep_ms:1000": "same",  # interleaved
            "workers/serial/tasks:1/sleep_ms:100": "untested (too few repetitions)",  # 2x, 1 vs 1
            "python/workers/threaded/tasks:5/sleep_ms:1000": "untested (too few repetitions)",  # 2x, 3 vs 3
        }
        check(rows == expected, f"verdicts: {rows}\nexpected {expected}")
        check([name for name, v in rows.items() if v == "slower"] == ["micro/thread-create-join"],
              f"exactly the 2x row should be slower: {rows}")
        check("| micro/thread-create-join | 40.3 µs | 80.8 µs | 2.005 | 0.0079 (exact) | 5 / 5 |" in result.stdout,
              "the 2x row's medians, ratio, exact p = 2/252 and repetitions are not in the table")
        check("Mann–Whitney U" in result.stdout and "compare.py" in result.stdout,
              "the header does not name the test and what it does beyond compare.py")
        for section, name in (("## Only in A", "micro/only-in-a"), ("## Only in B", "micro/only-in-b"),
                              ("## Failed rows", "micro/pool-apply in B: failed: fork: Resource"),
                              ("## Failed rows", "selectors/select/fds:10000 in A: impossible: select()")):
            part = result.stdout.partition(section)[2].partition("\n## ")[0]
            check(name in part, f"'{name}' not listed under '{section}'")
        for name in ("micro/only-in-a", "micro/pool-apply", "selectors/select/fds:10000"):
            check(name not in rows, f"{name} is in the table, but is not in both runs or failed")
        check(out.is_file() and out.read_text().strip() == result.stdout.strip(), "--out did not write the same table")
        check("5 rows in both: 1 slower, 2 same, 2 untested." in result.stdout,
              "the summary line does not count the untested rows apart from the same ones")
        # --fail-on-slower: 1 with the slower row; 0 comparing A with itself (every row the same).
        result = run([sys.executable, args.compare, fixtures / "a.json", fixtures / "b", "--fail-on-slower"])
        check(result.returncode == 1, f"--fail-on-slower with a slower row: exit {result.returncode}, expected 1")
        result = run([sys.executable, args.compare, fixtures / "a.json", fixtures / "a.json", "--fail-on-slower"])
        check(result.returncode == 0 and "slower" not in set(table_rows(result.stdout).values()),
              f"A against itself: exit {result.returncode}, verdicts {table_rows(result.stdout)}")
        # Raw Google Benchmark JSON on both sides (the b/ run's raw file: its run.json's benchmarks).
        raw = pathlib.Path(tmp) / "cpp.json"
        raw.write_text(json.dumps({"context": {}, "benchmarks": json.loads((fixtures / "b" / "run.json").read_text())
                                   ["benchmarks"]}))
        result = run([sys.executable, args.compare, fixtures / "a.json", raw])
        check(result.returncode == 0 and table_rows(result.stdout) == expected,
              f"a raw JSON file as B: exit {result.returncode}, verdicts {table_rows(result.stdout)}")
        # Run folders of raw files (no run.json; the fan-out peer's among them): their machine
        # context is in each file, and two different CPUs are said.
        benchmarks = json.loads((fixtures / "b" / "run.json").read_text())["benchmarks"]
        for side, cpu in (("x", "CPU X"), ("y", "CPU Y"), ("z", "CPU X")):
            (pathlib.Path(tmp) / side).mkdir()
            cpp = [b for b in benchmarks if not b["name"].startswith("python/")]
            py = [b for b in benchmarks if b["name"].startswith("python/")]
            (pathlib.Path(tmp) / side / "cpp.json").write_text(
                json.dumps({"context": {"cpu_model": cpu}, "benchmarks": cpp}))
            (pathlib.Path(tmp) / side / "python-fanout.json").write_text(
                json.dumps({"context": {"cpu_model": cpu}, "benchmarks": py}))
        result = run([sys.executable, args.compare, pathlib.Path(tmp) / "x", pathlib.Path(tmp) / "y"])
        check(result.returncode == 0 and "different machines" in result.stdout
              and "python/workers/threaded/tasks:5/sleep_ms:1000" in table_rows(result.stdout),
              f"raw run folders on two CPUs: exit {result.returncode}, the machines not said apart or "
              f"python-fanout.json not read: {result.stdout[:400]} {result.stderr}")
        result = run([sys.executable, args.compare, pathlib.Path(tmp) / "x", pathlib.Path(tmp) / "z"])
        check(result.returncode == 0 and "different machines" not in result.stdout,
              f"raw run folders on one CPU said to be different machines: {result.stdout[:400]}")


def cmd_bad_input(args):
    fixtures = pathlib.Path(args.fixtures)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = pathlib.Path(tmp)
        (tmp / "empty-folder").mkdir()
        (tmp / "bad.json").write_text("{ not json")
        (tmp / "no-rows.json").write_text('{"context": {}, "rows": []}')
        a = fixtures / "a.json"
        cases = [
            ([a, tmp / "missing.json"], "missing.json: no such file"),
            ([a, tmp / "empty-folder"], "empty-folder: not a run folder"),
            ([tmp / "bad.json", a], "bad.json: not valid JSON"),
            ([a, tmp / "no-rows.json"], "no-rows.json: no 'benchmarks' list"),
            ([a, fixtures / "disjoint.json"], "no row in common"),
            ([a, fixtures / "b", "--alpha", "2"], "--alpha: 2 is not between 0 and 1"),
            ([a, fixtures / "b", "--threshold", "x"], "--threshold: 'x' is not a number"),
            ([a, fixtures / "b", a], "at most two runs"),
        ]
        for argv, says in cases:
            result = run([sys.executable, args.compare] + argv)
            lines = result.stderr.strip().splitlines()
            check(result.returncode == 2 and len(lines) == 1 and says in lines[0] and not result.stdout,
                  f"compare {' '.join(map(str, argv))}: exit {result.returncode}, stderr {result.stderr!r}, "
                  f"expected exit 2 and one line saying '{says}'")


# --- scripts/bench's runs ------------------------------------------------------------

FAKE_ROWS = {  # program: (row, time unit, median); five repetitions each
    "conclab-bench": [("micro/thread-create-join/real_time", "us", 40.0),
                      ("workers/threaded/tasks:5/sleep_ms:1000/real_time", "ms", 1002.0),
                      ("workers/threaded/tasks:10/sleep_ms:1000/real_time", "ms", 1003.0),
                      ("workers/serial/tasks:5/sleep_ms:1000/real_time", "ms", 5006.0)],
    "bench_workers.py": [("python/micro/thread-create-join", "us", 90.0),
                         ("python/workers/threaded/tasks:5/sleep_ms:1000", "s", 1.004),
                         ("python/workers/threaded/tasks:10/sleep_ms:1000", "s", 1.006),
                         ("python/workers/serial/tasks:5/sleep_ms:1000", "s", 5.01)],
    "bench_net.py": [("python/net/tcp-rtt", "us", 30.0)],
    "bench_mux.py": [("python/socketserver/shutdown", "ms", 250.0)],
    "bench_fanout.py": [("python/fanout/iterative/clients:5/sleep_ms:0", "ms", 150.0)],
}


def cmd_fake_runner(args):
    """Write args.out as program args.name would: its rows matching the command's filter."""
    command = args.command
    pattern = "."
    for i, word in enumerate(command):
        if word.startswith("--benchmark_filter="):
            pattern = word.partition("=")[2]
        elif word == "--filter" and i + 1 < len(command):
            pattern = command[i + 1]
    if os.environ.get("CONCLAB_FAKE_LOG"):
        with open(os.environ["CONCLAB_FAKE_LOG"], "a") as log:
            log.write(json.dumps({"name": args.name, "out": args.out, "command": command}) + "\n")
    rows = []
    for name, unit, value in FAKE_ROWS[args.name]:
        if not re.search(pattern, name):
            continue
        for i in range(5):
            rows.append({"name": name, "run_type": "iteration", "repetitions": 5, "repetition_index": i,
                         "iterations": 10, "real_time": value * (1 + 0.002 * i), "cpu_time": value / 10,
                         "time_unit": unit})
    failing = os.environ.get("CONCLAB_FAKE_FAIL") == args.name
    if failing:
        rows.append({"name": "micro/fake-failure", "run_type": "iteration", "error_occurred": True,
                     "error_message": "fork: Resource temporarily unavailable"})
    pathlib.Path(args.out).write_text(json.dumps({"context": {"date": "2026-11-23T00:00:00+00:00", "num_cpus": 2},
                                                  "benchmarks": rows}))
    return 1 if failing else 0


def tree_hashes(folder):
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def check_links(report, after, plot=True):
    """Every relative link and image of a report resolves from the report's folder (and it has a plot)."""
    text = report.read_text() if report.is_file() else ""
    if not check(text.startswith("#"), f"{after}: {report} is missing or empty"):
        return
    links = [link for link in re.findall(r"\]\(([^)#\s]+)", text) if "://" not in link]
    check(not plot or any(link.startswith("plots/") for link in links), f"{after}: {report} shows no plot")
    for link in links:
        check((report.parent / link).exists(), f"{after}: {report} links to {link}: not there")


def cmd_bench_runs(args):
    source = pathlib.Path(args.repo).resolve()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = pathlib.Path(tmp)
        repo = tmp / "repo"
        result = run(["git", "clone", "-q", source, repo])
        if not check(result.returncode == 0, f"git clone {source}: {result.stderr}"):
            return
        # The scripts under test are the source tree's (edited or not): committed in the clone,
        # so that the clone starts clean and its revision is not "+dirty".
        for name in ("scripts/bench", "scripts/compare", "scripts/report", "scripts/benchdata.py", ".gitignore"):
            shutil.copy2(source / name, repo / name)
        git = ["git", "-C", repo, "-c", "user.name=check", "-c", "user.email=check@localhost"]
        run(git + ["add", "-A"])
        run(git + ["commit", "-q", "-m", "the scripts under test"])
        status = run(git + ["status", "--porcelain"]).stdout
        check(status == "", f"the clone is not clean before the runs: {status}")
        rev = run(git + ["rev-parse", "--short", "HEAD"]).stdout.strip()
        runner = tmp / "runner"
        runner.write_text(f"#!/bin/sh\nexec '{sys.executable}' '{pathlib.Path(__file__).resolve()}' fake-runner \"$@\"\n")
        runner.chmod(0o755)
        log = tmp / "runner.log"
        env = dict(os.environ, CONCLAB_BENCH_RUNNER=str(runner), CONCLAB_FAKE_LOG=str(log))
        env.pop("CONCLAB_FAKE_FAIL", None)
        reference = repo / "results" / "reference"
        before = tree_hashes(reference)
        runs = repo / "results" / "runs"

        def bench(*argv, expect=0, extra_env=None):
            log.write_text("")
            result = run([repo / "scripts" / "bench", *argv], cwd=tmp, env=dict(env, **(extra_env or {})))
            check(result.returncode == expect, f"scripts/bench {' '.join(argv)}: exit {result.returncode}, expected "
                  f"{expect}\n{result.stdout}\n{result.stderr}")
            return result

        def clean(after):
            status = run(git + ["status", "--porcelain", "--untracked-files=all"]).stdout
            check(status == "", f"git status after {after}: {status!r}, expected clean")

        def untouched(after):
            check(tree_hashes(reference) == before, f"results/reference/ changed after {after}")

        def newest(result, after, plot=True):
            """The run folder scripts/bench made (the one it names), checked; or None."""
            made = re.findall(r"this run is in (\S+?)/? ", result.stdout)
            if not check(len(made) == 1, f"{after}: the output does not say where the run is:\n{result.stdout}"):
                return None
            folder = repo / made[0]
            check(re.fullmatch(rf"\d{{8}}-\d{{6}}-{re.escape(rev)}(-\d+)?", folder.name) is not None,
                  f"{after}: run folder {folder.name}: not <YYYYMMDD-HHMMSS>-{rev} (a '+dirty' revision?)")
            for name in ("cpp.json", "python.json", "python-net.json", "python-mux.json", "python-fanout.json", "run.json", "REPORT.md"):
                check((folder / name).is_file(), f"{after}: {folder}/{name} is missing")
            check((folder / "plots").is_dir(), f"{after}: {folder}/plots/ is missing")
            check_links(folder / "REPORT.md", after, plot)
            latest = repo / "results" / "latest"
            check(latest.is_symlink() and not os.readlink(latest).startswith("/")
                  and latest.resolve() == folder.resolve(),
                  f"{after}: results/latest is not a relative link to {folder}: "
                  f"{os.readlink(latest) if latest.is_symlink() else 'no link'}")
            return folder

        # --help names every flag the script takes.
        flags = set(re.findall(r"^\s+(--[a-z-]+)[)=|]", (repo / "scripts" / "bench").read_text(), re.M))
        shown = run([repo / "scripts" / "bench", "--help"]).stdout
        check(len(flags) >= 5 and all(flag in shown for flag in flags),
              f"scripts/bench --help does not say {sorted(f for f in flags if f not in shown)} (flags: {sorted(flags)})")
        # A first and a second run (within the same second, likely): two folders, latest at the second.
        first = newest(bench(), "the first run")
        clean("the first run")
        untouched("the first run")
        second = newest(bench(), "the second run")
        check(first != second and len(list(runs.iterdir())) == 2, f"two runs, folders: {sorted(runs.iterdir())}")
        clean("the second run")
        untouched("the second run")
        if second:
            context = json.loads((second / "run.json").read_text())["context"]
            load = r"\d+\.\d+ \d+\.\d+ \d+\.\d+"
            for key, want in (("git_revision", rev), ("profile", "default"), ("filter", "."),
                              ("kernel", os.uname().release), ("cores", str(len(os.sched_getaffinity(0)))),
                              ("reference", "results/reference/run.json")):
                check(context.get(key) == want, f"run.json context {key} = {context.get(key)!r}, expected {want!r}")
            for key, pattern in (("load_before_build", load), ("load_before_runs", load), ("cpu_model", r".+"),
                                 ("virtualization", r".+"), ("governor", r".+")):
                check(re.fullmatch(pattern, str(context.get(key, ""))) is not None,
                      f"run.json context {key} = {context.get(key)!r}, expected {pattern}")
        # A filtered run: the filter reaches every program and the report's context.
        third = newest(bench("--filter", "micro/"), "a --filter micro/ run", plot=False)
        if third:
            doc = json.loads((third / "run.json").read_text())
            check(doc["context"].get("filter") == "micro/", f"--filter micro/: context filter = "
                  f"{doc['context'].get('filter')!r}")
            names = {b["name"] for b in doc["benchmarks"]}
            check(names == {"micro/thread-create-join", "python/micro/thread-create-join"},
                  f"--filter micro/: rows {sorted(names)}")
        calls = [json.loads(line) for line in log.read_text().splitlines()]
        check(len(calls) == len(FAKE_ROWS) and all("micro/" in " ".join(c["command"]) for c in calls),
              f"--filter micro/ did not reach the {len(FAKE_ROWS)} programs: {calls}")
        clean("a filtered run")
        untouched("a filtered run")
        # Refused: a partial reference; a run written into the reference's folder; a reference
        # from a run whose rows failed.
        bench("--update-reference", "--filter", "micro/", expect=2)
        for into in (reference, reference / "sub", str(reference) + "/", "repo/results/reference"):
            result = bench("--out", str(into), expect=2)  # (relative: to the caller's folder, tmp)
            check("the reference's folder" in result.stderr, f"--out {into}: {result.stderr}")
        untouched("--out into the reference's folder")
        result = bench("--update-reference", expect=1, extra_env={"CONCLAB_FAKE_FAIL": "bench_net.py"})
        check("NOT updated" in result.stderr, f"a failed run with --update-reference: {result.stderr}")
        untouched("--update-reference with failed rows")
        # Compare the newest run with the reference.
        result = run([repo / "scripts" / "bench", "--compare", "results/latest"], cwd=repo, env=env)
        check(result.returncode == 0 and "| micro/thread-create-join |" in result.stdout,
              f"scripts/bench --compare results/latest: exit {result.returncode}\n{result.stdout[-2000:]}"
              f"\n{result.stderr}")
        # --update-reference: the run becomes results/reference/, its report rendered there.
        result = bench("--update-reference")
        last = newest(result, "--update-reference")
        check("reference is now this run" in result.stdout, f"--update-reference does not say so:\n{result.stdout}")
        if last:
            ran = json.loads((last / "run.json").read_text())["benchmarks"]
            now = json.loads((reference / "run.json").read_text())["benchmarks"]
            check(ran == now, "results/reference/run.json has not the run's rows")
        check_links(reference / "REPORT.md", "--update-reference")
        held = {name.partition("/")[0] for name in tree_hashes(reference)}
        check((reference / "plots").is_dir() and held <= {"run.json", "REPORT.md", "plots"},
              f"results/reference/ should hold run.json, REPORT.md and plots/: {sorted(tree_hashes(reference))}")
        status = run(git + ["status", "--porcelain", "--untracked-files=all"]).stdout.splitlines()
        check(status and all(line[3:].startswith("results/reference/") for line in status),
              f"after --update-reference, git status should show results/reference/ only: {status}")
        check(not (repo / "results" / "reference.new").exists(), "results/reference.new/ left behind")
        # --out DIR: the run goes there, and latest follows.
        elsewhere = tmp / "elsewhere"
        result = bench("--out", str(elsewhere))
        check((elsewhere / "run.json").is_file() and (repo / "results" / "latest").resolve() == elsewhere,
              f"--out {elsewhere}: no run.json there, or results/latest not pointing at it")


# --- scripts/test's /dev/shm check ------------------------------------------------------

def cmd_shm_leaks(args):
    # Segments of conclab's own name, as another run would leave them. Only
    # these two names are asserted on: tests running at once make and remove
    # segments of their own meanwhile.
    shm = pathlib.Path("/dev/shm")
    foreign = shm / f"conclab-shm-leaks-check-{os.getpid()}-foreign"
    new = shm / f"conclab-shm-leaks-check-{os.getpid()}-new"
    fd, before = tempfile.mkstemp(prefix="conclab-shm-before-")
    os.close(fd)
    try:
        foreign.write_bytes(b"")  # there before the run: not this run's
        r = run([args.script, "--before", before])
        check(r.returncode == 0, f"--before: exit {r.returncode}: {r.stderr.strip()}")
        check(foreign.name in pathlib.Path(before).read_text().split(), "--before did not list the planted segment")
        r = run([args.script, "--after", before])
        check(foreign.name not in r.stdout, "a segment that was there before the run is reported as left by it")
        new.write_bytes(b"")  # made during the run: left by it
        r = run([args.script, "--after", before])
        check(r.returncode == 1, f"--after with a new segment: exit {r.returncode}, expected 1")
        check(new.name in r.stdout.split(), f"--after does not name the new segment: {r.stdout!r}")
        check(foreign.name not in r.stdout, "--after names the segment that was there before")
        r = run([args.script, "--after", pathlib.Path(before).parent / "conclab-no-such-file"])
        check(r.returncode == 2 and len(r.stderr.splitlines()) == 1, "--after with no snapshot: not one line and exit 2")
        # scripts/test takes the snapshot before ctest and compares after it.
        text = pathlib.Path(args.test).read_text()
        at = [text.find(s) for s in ("scripts/shm-leaks --before", "\nctest ", "scripts/shm-leaks --after")]
        check(-1 not in at and at == sorted(at), "scripts/test does not run shm-leaks --before, ctest, --after in order")
    finally:
        foreign.unlink(missing_ok=True)
        new.unlink(missing_ok=True)
        os.unlink(before)


def cmd_names(args):
    """benchdata: what Google Benchmark appends to a name goes, so that a row has one name everywhere."""
    sys.path.insert(0, args.scripts)
    import benchdata
    for raw, expected in [
            ("workers/serial/tasks:5/sleep_ms:1000/repeats:3/real_time", "workers/serial/tasks:5/sleep_ms:1000"),
            ("fanout/epoll/clients:10000/sleep_ms:1000/repeats:3/manual_time", "fanout/epoll/clients:10000/sleep_ms:1000"),
            ("micro/empty/one-iteration/iterations:1/real_time", "micro/empty/one-iteration"),
            ("socketserver/shutdown/iterations:16/manual_time", "socketserver/shutdown"),
            ("micro/rlock-contended/real_time/threads:2", "micro/rlock-contended/threads:2"),
            ("python/workers/serial/tasks:5/sleep_ms:1000", "python/workers/serial/tasks:5/sleep_ms:1000")]:
        got = benchdata.canonical(raw)
        check(got == expected, f"canonical({raw!r}) = {got!r}, expected {expected!r}")
    # A filter anchored at the name's end selects the row whatever Google Benchmark appended.
    names = ["micro/empty/real_time", "micro/empty/one-iteration/iterations:1/real_time",
             "workers/serial/tasks:5/sleep_ms:1000/repeats:3/real_time", "python/micro/empty"]
    for pattern, expected in [("micro/empty$", [names[0], names[3]]),
                              ("^micro/empty/one-iteration$", [names[1]]),
                              ("sleep_ms:1000$|^micro/empty$", [names[0], names[2]]),
                              ("micro/empty", [names[0], names[1], names[3]]),
                              (r"empty\$", [])]:
        translated = benchdata.gbench_filter(pattern)
        got = [n for n in names if re.search(translated, n)]
        check(got == expected, f"gbench_filter({pattern!r}) = {translated!r} selects {got}, expected {expected}")


def cmd_gbench_filter(args):
    """conclab-bench itself selects, with an anchored --filter made by gbench_filter, exactly the rows meant."""
    sys.path.insert(0, args.scripts)
    import benchdata
    for pattern, expected in [("micro/empty$", ["micro/empty/real_time"]),
                              ("^micro/empty/one-iteration$", ["micro/empty/one-iteration/iterations:1/real_time"])]:
        listed = subprocess.run([args.bench, "--benchmark_list_tests=true",
                                 f"--benchmark_filter={benchdata.gbench_filter(pattern)}"],
                                capture_output=True, text=True, timeout=30)
        got = listed.stdout.split()
        check(listed.returncode == 0 and got == expected,
              f"--filter {pattern!r} listed {got} (exit {listed.returncode}), expected {expected}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    for name in ("pvalues", "verdicts", "bad-input"):
        p = sub.add_parser(name)
        p.add_argument("--compare", required=True)
        p.add_argument("--fixtures")
    p = sub.add_parser("bench-runs")
    p.add_argument("--repo", required=True)
    p = sub.add_parser("shm-leaks")
    p.add_argument("--script", required=True)
    p.add_argument("--test", required=True)
    p = sub.add_parser("names")
    p.add_argument("--scripts", required=True)
    p = sub.add_parser("gbench-filter")
    p.add_argument("--scripts", required=True)
    p.add_argument("--bench", required=True)
    p = sub.add_parser("fake-runner")
    p.add_argument("name", choices=sorted(FAKE_ROWS))
    p.add_argument("out")
    p.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    if args.cmd == "fake-runner":
        return cmd_fake_runner(args)
    {"pvalues": cmd_pvalues, "verdicts": cmd_verdicts, "bad-input": cmd_bad_input,
     "bench-runs": cmd_bench_runs, "shm-leaks": cmd_shm_leaks, "names": cmd_names,
     "gbench-filter": cmd_gbench_filter}[args.cmd](args)
    if failures:
        print(f"{len(failures)} check(s) failed", file=sys.stderr)
        return 1
    print("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
