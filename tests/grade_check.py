#!/usr/bin/env python3
"""ctest checks of scripts/grade (tests/grade.cmake).

  solutions   every reference solution scores full marks
  starters    every untouched starter scores zero on every check
  faults      the fault fixtures (tests/fixtures/grade): each fault is named,
              the good one scores, and nothing is left behind
  args        bad lab and exercise names exit 2; --hint and --list work
  handout     scripts/handout: the student edition has no solutions and no
              answers, and its grader says so
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GRADE = ROOT / "scripts" / "grade"
FIXTURES = ROOT / "tests" / "fixtures" / "grade"

failures = []


def expect(ok, what):
    if not ok:
        failures.append(what)
        print(f"FAIL: {what}")


def grade(*args, build_root, werror, timeout=1500):
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "grade.json"
        cmd = [sys.executable, str(GRADE), "--build-root", str(build_root), "--json", str(out), *args]
        if werror:
            cmd.append("--werror")
        r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=timeout)
        print(r.stdout)
        report = json.loads(out.read_text()) if out.exists() else None
    return r, report


def solutions(a):
    r, report = grade("--solutions", build_root=a.build_root, werror=a.werror)
    expect(r.returncode == 0, f"scripts/grade --solutions exit {r.returncode}, expected 0")
    expect(report is not None and report["max"] > 0 and report["score"] == report["max"],
           f"solutions scored {report and report['score']}/{report and report['max']}")
    labs = {c["lab"] for c in (report or {"checks": []})["checks"]}
    for lab in ("01-threads-speedup", "02-rlock-counter", "03-fork", "04-shared-memory", "05-process-pool"):
        expect(lab in labs, f"lab {lab} has no graded exercises")
    for lab in labs:
        n = len({c["exercise"] for c in report["checks"] if c["lab"] == lab})
        expect(3 <= n <= 5, f"lab {lab} has {n} exercises (3 to 5 wanted)")


def starters(a):
    r, report = grade("--pristine", build_root=a.build_root, werror=a.werror)
    expect(r.returncode == 1, f"scripts/grade on the starters exit {r.returncode}, expected 1")
    expect(report is not None and report["max"] > 0, "no report")
    for c in (report or {"checks": []})["checks"]:
        expect(c["points"] == 0, f"the untouched starter {c['lab']}/{c['exercise']} scores on '{c['check']}'")
        expect(c["why"] and "does not build" not in c["why"],
               f"the starter {c['lab']}/{c['exercise']} does not build: {c['why']}")


def leftovers(build_root):
    """Processes running a program under build_root, fixture segments, grader cgroups."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                exe = os.readlink(f"/proc/{entry}/exe")
            except OSError:
                continue
            if exe.startswith(str(build_root)):
                found.append(f"process {entry} ({exe})")
    found += [f"/dev/shm/{n}" for n in os.listdir("/dev/shm") if n.startswith("grade-fixture-")]
    for base in (Path("/sys/fs/cgroup/pids"), Path("/sys/fs/cgroup")):
        if base.is_dir():
            found += [str(p) for p in base.glob("grade*x*")]
    return found


EXPECTED = {
    "good": None,
    "hang": "still running after 3 s",
    "forkbomb": "fork bomb",
    "zombie": "left 3 child process(es) it never reaped",
    "orphan": "left 1 process(es) running after it ended",
    "shm": "left 1 shared-memory segment(s)",
    "crash": "SIGSEGV",
    "garbage": "no 'ok' line",
    "nobuild": "does not build",
}


def faults(a):
    r, report = grade("--labs", str(FIXTURES), build_root=a.build_root, werror=False, timeout=300)
    expect(r.returncode == 1, f"exit {r.returncode}, expected 1")
    checks = {c["exercise"]: c for c in (report or {"checks": []})["checks"]}
    for name, why in EXPECTED.items():
        c = checks.get(name)
        if c is None:
            expect(False, f"no result for fixture {name}")
        elif why is None:
            expect(c["ok"], f"{name} should pass, got: {c['why']}")
        else:
            expect(not c["ok"] and why in (c["why"] or ""), f"{name}: expected '{why}', got: {c['why']}")
    expect(report is not None and report["score"] == 1 and report["max"] == len(EXPECTED),
           f"score {report and report['score']}/{report and report['max']}, expected 1/{len(EXPECTED)}")
    expect("more bytes dropped" not in r.stdout, "the grader printed the garbage it dropped")
    # The grader's own process was the subreaper: leftovers died with the runs.
    left = leftovers(a.build_root)
    expect(not left, f"left behind: {left}")
    not_root(a.build_root)


NOT_ROOT = """
import sys
sys.path.insert(0, sys.argv[1])
import gradelib
gradelib.become_subreaper()
for name in ("forkbomb", "hang", "good"):
    r = gradelib.run_program(sys.argv[2] + "/" + name, [], timeout=3, max_processes=50)
    print(name, r.returncode, r.problem, flush=True)
"""


def not_root(build_root):
    """A student is not root and has no pids cgroup of their own: the same
    faults, run as nobody, are still stopped, named and cleaned up."""
    setpriv = shutil.which("setpriv")
    if os.getuid() != 0 or not setpriv:
        print("skipped the not-root run: needs root (to become nobody) and setpriv")
        return
    programs = build_root / "plain" / "exercises" / "99"
    r = subprocess.run([setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", "/usr/bin/python3", "-c",
                        NOT_ROOT, str(ROOT / "scripts"), str(programs)], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, text=True, timeout=120, cwd="/")
    print(r.stdout)
    expect("forkbomb None" in r.stdout and "fork bomb" in r.stdout, f"as nobody, the fork bomb: {r.stdout!r}")
    expect("hang None still running after 3 s" in r.stdout, f"as nobody, the hang: {r.stdout!r}")
    expect("good 0 None" in r.stdout, f"as nobody, the good one: {r.stdout!r}")
    left = subprocess.run(["pgrep", "-u", "65534"], stdout=subprocess.PIPE, text=True).stdout.split()
    expect(not left, f"processes of nobody left: {left}")


def args(a):
    def run(*argv):
        return subprocess.run([sys.executable, str(GRADE), *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, timeout=60)
    r = run("77")
    expect(r.returncode == 2 and "no lab '77'" in r.stderr and "01-threads-speedup" in r.stderr,
           f"unknown lab: exit {r.returncode}, stderr {r.stderr!r}")
    r = run("01/nonesuch")
    expect(r.returncode == 2 and "no exercise 'nonesuch'" in r.stderr and "threaded" in r.stderr,
           f"unknown exercise: exit {r.returncode}, stderr {r.stderr!r}")
    r = run("--no-such-flag")
    expect(r.returncode == 2, f"bad flag: exit {r.returncode}")
    r = run("--hint", "01/threaded")
    expect(r.returncode == 0 and "hint:" in r.stdout and "01/threaded" in r.stdout, f"--hint: {r.stdout!r}")
    r = run("--list")
    expect(r.returncode == 0 and "01/threaded" in r.stdout and "points" in r.stdout, f"--list: {r.stdout!r}")
    r = run("--list", "--markdown")
    teaching = (ROOT / "labs" / "TEACHING.md").read_text()
    begin, end = "(scripts/grade --list --markdown) -->\n", "<!-- exercises:end -->"
    table = teaching[teaching.index(begin) + len(begin):teaching.index(end)] if begin in teaching else ""
    expect(r.returncode == 0 and table == r.stdout,
           "labs/TEACHING.md's exercise table is not what scripts/grade --list --markdown prints: paste it in")
    r = run("--show-solution", "01/threaded")
    if (ROOT / "labs/01-threads-speedup/exercises/solutions").is_dir():
        expect(r.returncode == 0 and "TODO" not in r.stdout and "join()" in r.stdout,
               f"--show-solution: {r.stdout[:200]!r}")
    else:  # the student edition
        expect(r.returncode == 2 and "no solutions" in r.stderr, f"--show-solution without solutions: {r.stderr!r}")
    r = run("--help")
    expect(r.returncode == 0 and "scripts/grade 02/deadlock" in r.stdout, "--help")


def handout(a):
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "edition"
        r = subprocess.run([sys.executable, str(ROOT / "scripts" / "handout"), str(out)], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, timeout=120)
        expect(r.returncode == 0 and "solution(s) left out" in r.stdout, f"handout: {r.returncode} {r.stderr}")
        expect(not list(out.glob("labs/*/exercises/solutions")), "the edition has solutions")
        for readme in out.glob("labs/*/README.md"):
            text = readme.read_text()
            expect("<summary>Answers</summary>" not in text, f"{readme.relative_to(out)} still has its answers")
        expect(any("ask your teacher" in p.read_text() for p in out.glob("labs/*/README.md")), "no answer note")
        log = subprocess.run(["git", "-C", str(out), "log", "--oneline"], stdout=subprocess.PIPE, text=True).stdout
        expect("student edition" in log, f"the edition is not a repository with its commit: {log!r}")
        expect((out / "labs/01-threads-speedup/exercises/threaded.cpp").is_file(), "the edition lacks a starter")
        expect(os.access(out / "scripts/grade", os.X_OK), "scripts/grade lost its mode")
        r = subprocess.run([sys.executable, str(out / "scripts/grade"), "--solutions", "01"], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, timeout=60)
        expect(r.returncode == 2 and "no solutions" in r.stderr and "configure" not in r.stdout,
               f"grade --solutions in the edition: {r.returncode} {r.stderr!r}")
        r = subprocess.run([sys.executable, str(ROOT / "scripts" / "handout"), str(out)], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, timeout=60)
        expect(r.returncode == 2 and "not an empty folder" in r.stderr, "handout into a full folder")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("what", choices=["solutions", "starters", "faults", "args", "handout"])
    p.add_argument("--build-root", type=Path, default=None)
    p.add_argument("--werror", action="store_true")
    a = p.parse_args()
    if a.build_root:
        a.build_root = a.build_root.resolve()
    globals()[a.what](a)
    if failures:
        print(f"{len(failures)} failure(s)")
        return 1
    print("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
