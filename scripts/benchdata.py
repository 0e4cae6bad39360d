"""benchdata — reading benchmark runs: what scripts/report and scripts/compare share.

A run is one or more Google Benchmark JSON files: conclab-bench's, the CPython
peers' (names starting with "python/", the same shape), or a file that
scripts/report merged before (its context has "sources").

Every row appears as one entry per repetition ("run_type": "iteration",
"repetitions": R, "repetition_index": i); a file without those fields is one
repetition per row. Google Benchmark's own aggregates ("run_type":
"aggregate": mean, median, stddev, cv) are ignored: the statistics here are
computed from the repetitions, the same way for both languages.

    entries = load(path)            -> (context, entries, failed)
    merge(paths)                    -> (context, entries, failed), a later file wins per name
    group(entries)                  -> one Row per name: median, min, max, samples, counters

A missing or malformed input raises InputError naming the file and the problem.
"""
import json
import pathlib
import re
import statistics

UNIT_SECONDS = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0}
REQUIRED = ("name", "real_time", "time_unit")
# What Google Benchmark appends to a name: the timer, a fixed iteration count, and
# the repetitions of a row that sets its own (Repetitions(n): "/repeats:3").
NAME_SUFFIX = re.compile(r"/(?:real_time|manual_time|iterations:\d+|repeats:\d+)(?=/|$)")
IMPOSSIBLE = "impossible: "
# A row whose farthest repetition lies farther than this from the median (a fraction of it) is noisy.
NOISY = 0.10
# Fields of an entry that are not counters: never averaged into a row.
NOT_COUNTERS = {"name", "run_name", "run_type", "family_index", "per_family_instance_index", "repetitions",
                "repetition_index", "threads", "iterations", "real_time", "cpu_time", "time_unit", "language",
                "seconds", "error_occurred", "error_message", "aggregate_name", "aggregate_unit", "label"}


class InputError(Exception):
    pass


def canonical(name):
    """The name without what Google Benchmark appends ("/real_time", ...): the same in both languages."""
    return NAME_SUFFIX.sub("", name)


# The same suffixes as a POSIX extended regex (Google Benchmark's --benchmark_filter).
GBENCH_SUFFIXES = "(/(real_time|manual_time|iterations:[0-9]+|repeats:[0-9]+))*"


def gbench_filter(pattern):
    """A --filter on the names a report shows, made to select the same rows in Google Benchmark,
    which matches it against the names with their suffixes: where the pattern anchors a name's
    end ("$", not an escaped "\\$"), the suffixes may come first."""
    return re.sub(r"(?<!\\)\$", lambda _: GBENCH_SUFFIXES + "$", pattern)


def language(name):
    return "python" if name.startswith("python/") else "cpp"


def load(path):
    """Read one JSON file; return (context, entries, failed) or raise InputError naming the file.

    entries: one per repetition of each row that ran, with "name" (canonical),
    "language" and "seconds" (the wall time of one iteration) added.
    failed: the entries that ended with an error, each {name, language, error_message, impossible}.
    """
    try:
        text = pathlib.Path(path).read_text()
    except OSError as e:
        raise InputError(f"{path}: cannot read: {e.strerror}")
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as e:
        raise InputError(f"{path}: not valid JSON: {e.msg} at line {e.lineno} column {e.colno}")
    if not isinstance(doc, dict) or not isinstance(doc.get("benchmarks"), list):
        raise InputError(f"{path}: no 'benchmarks' list: not Google Benchmark JSON")
    entries, failed = [], []
    for i, row in enumerate(doc["benchmarks"]):
        if not isinstance(row, dict):
            raise InputError(f"{path}: benchmark #{i} is not an object")
        if row.get("error_occurred"):
            if not isinstance(row.get("name"), str) or not isinstance(row.get("error_message"), str):
                raise InputError(f"{path}: failed benchmark #{i} ({row.get('name', '?')}) has no name or error_message")
            name = canonical(row["name"])
            failed.append({"name": name, "language": language(name), "error_occurred": True,
                           "error_message": row["error_message"], "run_type": "iteration",
                           "impossible": row["error_message"].startswith(IMPOSSIBLE)})
            continue
        if row.get("run_type", "iteration") != "iteration":
            continue  # Google Benchmark's aggregates: computed here from the repetitions instead
        missing = [k for k in REQUIRED if k not in row]
        if missing:
            raise InputError(f"{path}: benchmark #{i} ({row.get('name', '?')}) has no {', '.join(missing)}")
        if row["time_unit"] not in UNIT_SECONDS:
            raise InputError(f"{path}: benchmark #{i} ({row['name']}) has unknown time_unit {row['time_unit']!r}")
        if not isinstance(row["real_time"], (int, float)) or row["real_time"] <= 0:
            raise InputError(f"{path}: benchmark #{i} ({row['name']}) has a bad real_time {row['real_time']!r}")
        row = dict(row, name=canonical(row["name"]))
        row["language"] = language(row["name"])
        row["seconds"] = row["real_time"] * UNIT_SECONDS[row["time_unit"]]
        entries.append(row)
    return doc.get("context", {}), entries, failed


def merge(paths):
    """(context, entries, failed) of every input; a later file wins for the same name (all its repetitions).

    The context of a file merged before is taken apart again: its "sources"
    join the others', its own keys (--context of scripts/report) are kept.
    """
    import os
    contexts, extra, entries, failed = {}, {}, {}, {}
    for path in paths:
        context, file_entries, file_failed = load(path)
        if "sources" in context:  # a file merged by scripts/report
            contexts.update(context["sources"])
            extra.update({k: v for k, v in context.items() if k != "sources"})
        else:
            contexts[os.path.basename(str(path))] = context
        names = {e["name"] for e in file_entries} | {e["name"] for e in file_failed}
        for name in names:
            entries.pop(name, None)
            failed.pop(name, None)
        for entry in file_entries:
            entries.setdefault(entry["name"], []).append(entry)
        for entry in file_failed:
            failed.setdefault(entry["name"], entry)  # the first error of the row says why
    # A row with one failed repetition is a failed row.
    for name in failed:
        entries.pop(name, None)
    if not entries and not failed:
        raise InputError(f"{', '.join(map(str, paths))}: no benchmark rows")
    flat = [e for name in sorted(entries) for e in entries[name]]
    return {"sources": contexts, **extra}, flat, [failed[name] for name in sorted(failed)]


def quartiles(values):
    """(q1, q3) of the values (the median of each half, as a box plot draws them)."""
    values = sorted(values)
    half = len(values) // 2
    if len(values) < 2:
        return values[0], values[0]
    return statistics.median(values[:half]), statistics.median(values[-half:])


def group(entries):
    """One row per name, in name order, from its repetitions:

    seconds       the median wall time of one iteration over the repetitions
    samples       every repetition's seconds, in order
    min, max      the fastest and slowest repetition; q1, q3 the quartiles
    spread        how far the farthest repetition lies from the median, over the median (the
                  report's "±r%"); noisy when above NOISY (and more than one repetition)
    repetitions   how many
    every counter (cpu_s, efficiency, ...) as its median over the repetitions,
    and the other fields of the first repetition (name, language, time_unit,
    iterations: how many iterations one repetition ran, ...).
    """
    by_name = {}
    for entry in entries:
        by_name.setdefault(entry["name"], []).append(entry)
    rows = []
    for name in sorted(by_name):
        reps = sorted(by_name[name], key=lambda e: e.get("repetition_index", 0))
        samples = [e["seconds"] for e in reps]
        row = {k: v for k, v in reps[0].items() if k in NOT_COUNTERS or not isinstance(v, (int, float))}
        counters = {k for e in reps for k, v in e.items() if k not in NOT_COUNTERS and isinstance(v, (int, float))
                    and not isinstance(v, bool)}
        for key in counters:
            values = [e[key] for e in reps if isinstance(e.get(key), (int, float))]
            row[key] = statistics.median(values)
        median = statistics.median(samples)
        q1, q3 = quartiles(samples)
        # spread: how far the farthest repetition (fastest or slowest) lies from the median, as a
        # fraction of it: what a report cell shows as "±r%", and what makes a row noisy.
        spread = max(median - min(samples), max(samples) - median) / median if median else 0.0
        row.update(seconds=median, samples=samples, min=min(samples), max=max(samples), q1=q1, q3=q3,
                   spread=spread, repetitions=len(samples))
        row["noisy"] = row["repetitions"] > 1 and row["spread"] > NOISY
        rows.append(row)
    return rows


if __name__ == "__main__":
    # scripts/bench: python3 scripts/benchdata.py gbench-filter RE
    import sys
    if len(sys.argv) != 3 or sys.argv[1] != "gbench-filter":
        sys.exit("usage: benchdata.py gbench-filter RE")
    print(gbench_filter(sys.argv[2]))
