#!/usr/bin/env python3
"""Checks that the READMEs tell the truth (ctest, tests/labs.cmake).

    readme_check.py output README --bin-dir DIR [--sanitizer NAME]
        run every command of the README's "Expected output" blocks and compare
        what it prints with the lines shown under it, as the README's
        <!-- output-check --> comments allow (labs/README.md describes them)
    readme_check.py links FILE...
        require every relative link in FILE (Markdown) to name a file or
        folder that exists
    readme_check.py self-test FIXTURE_DIR
        require `output` to accept FIXTURE_DIR/good.md and to refuse each
        broken command of FIXTURE_DIR/bad.md with the expected reason
"""
import argparse
import concurrent.futures
import fcntl
import os
import pathlib
import re
import shlex
import signal
import subprocess
import sys
import tempfile
import threading

TIMEOUT_S = 60
NUMBER = r"(-?\d+(?:\.\d+)?)"
failures = []


def fail(message):
    failures.append(message)
    print(f"FAIL: {message}", file=sys.stderr)


# --- parsing a README ---------------------------------------------------------------


class Directives:
    """What an <!-- output-check --> comment says, for one block."""

    KEYS = ("vary", "about", "any-order", "skip", "racy")

    def __init__(self):
        self.rules = []  # (programs or None for all, key, value)

    def add(self, line, where):
        programs = None
        m = re.match(r"for ([^:]+):\s*(.*)$", line)
        if m:
            programs = {p.strip() for p in m.group(1).split(",")}
            line = m.group(2)
        key, _, value = line.partition(":")
        key = key.strip()
        if key not in self.KEYS:
            fail(f"{where}: unknown output-check directive '{key}' (known: {', '.join(self.KEYS)})")
            return
        self.rules.append((programs, key, value.strip()))

    def get(self, program, key):
        """Every value of `key` that applies to `program`."""
        return [v for programs, k, v in self.rules if k == key and (programs is None or program in programs)]

    def patterns(self, program, key):
        return [p.strip() for v in self.get(program, key) for p in v.split("|") if p.strip()]


def program_of(command):
    """The program a command runs: `counter-unsync`, `pool_worker_crash.py`, ..."""
    lexer = shlex.shlex(command, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    words = []
    try:
        for word in lexer:  # the first simple command: up to ; | & && ...
            if set(word) <= set(";|&()<>"):
                break
            words.append(word)
    except ValueError:  # unbalanced quotes: the words before them still name the program
        pass
    while words and (words[0] in ("timeout", "python3", "env") or re.fullmatch(r"[\d.]+[smh]?", words[0])):
        words.pop(0)
    return pathlib.PurePath(words[0]).name if words else ""


def expected_blocks(readme):
    """The fenced blocks of the "Expected output" section, each with its directives.

    Yields (line number, Directives, [(command, [expected lines])]).
    """
    lines = readme.read_text().splitlines()
    try:
        start = next(i for i, l in enumerate(lines) if l.strip() == "## Expected output")
    except StopIteration:
        fail(f"{readme}: no '## Expected output' section")
        return
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
    i, directives, found = start + 1, None, 0
    while i < end:
        line = lines[i]
        if line.strip().startswith("<!-- output-check"):
            directives = Directives()
            if not line.strip().endswith("-->"):
                i += 1
                while i < end and not lines[i].strip().endswith("-->"):
                    if lines[i].strip():
                        directives.add(lines[i].strip(), f"{readme}:{i + 1}")
                    i += 1
        elif line.startswith("```"):
            first = i + 1
            i += 1
            body = []
            while i < end and not lines[i].startswith("```"):
                body.append(lines[i])
                i += 1
            if not body or not body[0].startswith("$ "):
                fail(f"{readme}:{first}: an Expected output block that does not start with a '$ command' line")
            else:
                commands = []
                for text in body:
                    if text.startswith("$ "):
                        commands.append((text[2:], []))
                    else:
                        commands[-1][1].append(text)
                found += 1
                yield first, directives or Directives(), commands
            directives = None
        i += 1
    if not found:
        fail(f"{readme}: the Expected output section has no block of commands and their output")


# --- comparing lines ----------------------------------------------------------------


def normalise(line):
    return " ".join(line.split())


def pattern_regex(pattern, anything=False):
    """A directive's pattern as a regex: # is a number, and with `anything` * is any text."""
    out = ""
    for part in re.split(r"([#*])", normalise(pattern)):
        if part == "#":
            out += NUMBER
        elif part == "*" and anything:
            out += ".*"
        else:
            out += re.escape(part)
    return out


class Line:
    """One expected line: a regex in which varying numbers match any number."""

    def __init__(self, text, vary, about):
        self.text = normalise(text)
        kinds = {}  # span of a number in self.text -> "vary" or "about"
        for kind, patterns in (("vary", vary), ("about", about)):
            for pattern in patterns:
                for m in re.finditer(pattern_regex(pattern), self.text):
                    for g in range(1, (m.lastindex or 0) + 1):
                        if kinds.get(m.span(g)) != "about":
                            kinds[m.span(g)] = kind
        regex, at, self.kinds, self.shown = "", 0, [], []
        for (begin, end), kind in sorted(kinds.items()):
            regex += re.escape(self.text[at:begin]) + NUMBER
            self.kinds.append(kind)
            self.shown.append(float(self.text[begin:end]))
            at = end
        self.regex = re.compile(regex + re.escape(self.text[at:]))

    def matches(self, actual):
        m = self.regex.fullmatch(normalise(actual))
        if not m:
            return False
        for kind, shown, got in zip(self.kinds, self.shown, m.groups()):
            # "about": sleeps and waits, within a quarter and a quarter of a second.
            if kind == "about" and abs(float(got) - shown) > 0.25 * abs(shown) + 0.25:
                return False
        return True


def match_any_order(expected, actual):
    """Whether each expected line matches a different actual line (bipartite matching)."""
    owner = {}

    def place(i, seen):
        for j, line in enumerate(actual):
            if j not in seen and expected[i].matches(line):
                seen.add(j)
                if j not in owner or place(owner[j], seen):
                    owner[j] = i
                    return True
        return False

    return all(place(i, set()) for i in range(len(expected)))


def compare(command, expected_text, actual_text, directives):
    program = program_of(command)
    vary, about = directives.patterns(program, "vary"), directives.patterns(program, "about")
    any_order = [re.compile(pattern_regex(p, anything=True)) for p in directives.patterns(program, "any-order")]
    expected = [Line(t, vary, about) for t in expected_text]
    actual = actual_text.rstrip("\n").split("\n") if actual_text.strip() else []
    problems = []
    i = 0
    while i < min(len(expected), len(actual)) and not problems:
        group = next((g for g in any_order if g.fullmatch(expected[i].text)), None)
        j = i + 1
        while group and j < len(expected) and group.fullmatch(expected[j].text):
            j += 1
        if group and not match_any_order(expected[i:j], actual[i:j]):
            problems.append(f"lines {i + 1}-{j} (in any order) differ: the README shows {expected_text[i:j]}, "
                            f"the program printed {actual[i:j]}")
        elif not group and not expected[i].matches(actual[i]):
            problems.append(f"line {i + 1} differs: the README shows '{expected_text[i]}', "
                            f"the program printed '{actual[i]}'")
        i = j
    if len(actual) != len(expected):
        problems.append(f"{len(actual)} lines, the README shows {len(expected)}")
    return problems


# --- running ------------------------------------------------------------------------


def run_command(command, bin_dir, env, cwd):
    shell_command = command.replace("build/default/bin/", f"{bin_dir}/")
    try:
        result = subprocess.run(["bash", "-c", shell_command], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True, timeout=TIMEOUT_S, env=env, cwd=cwd)
        return result.stdout, None
    except subprocess.TimeoutExpired:
        return "", f"still running after {TIMEOUT_S} s"


def is_server(command):
    """`$ server ... &`: a program started in the background (a second terminal)."""
    return command.rstrip().endswith("&") and not command.rstrip().endswith("&&")


class Background:
    """A server started by a `$ ... &` line: runs until the block's other
    commands are done, then gets SIGTERM; its whole output is compared."""

    def __init__(self, command, bin_dir, env, cwd):
        shell_command = command.rstrip()[:-1].rstrip().replace("build/default/bin/", f"{bin_dir}/")
        # exec: the signal reaches the server itself, not a shell around it.
        self.proc = subprocess.Popen(["bash", "-c", f"exec {shell_command}"], stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True, env=env, cwd=cwd)
        self.lines = []
        self.first = threading.Event()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.append(line)
            self.first.set()
        self.first.set()

    def stop(self):
        """SIGTERM, then the whole output and what went wrong (None if nothing)."""
        error = None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            status = self.proc.wait(timeout=TIMEOUT_S)
            if status != 0:
                error = f"exit status {status} after SIGTERM, expected 0"
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            error = f"still running {TIMEOUT_S} s after SIGTERM"
        self.reader.join(TIMEOUT_S)
        return "".join(self.lines), error


def run_server_block(commands, bin_dir, env, cwd):
    """Run a block that starts servers: in order, each `&` line in the
    background (waiting for its first line), the others to their end; then
    stop the servers. Blocks like this run one at a time on the machine (a
    lock file), since they may use a seed's fixed port.

    Returns [(actual output, error)] in the order of `commands`."""
    lock = open(pathlib.Path(tempfile.gettempdir()) / "conclab-readme-servers.lock", "w")
    fcntl.flock(lock, fcntl.LOCK_EX)
    try:
        results, servers = [None] * len(commands), []
        for i, (command, _) in enumerate(commands):
            if is_server(command):
                server = Background(command, bin_dir, env, cwd)
                servers.append((i, server))
                if not server.first.wait(TIMEOUT_S):
                    results[i] = ("", f"printed nothing within {TIMEOUT_S} s")
                    break
                if server.proc.poll() is not None and not server.lines:
                    break
            else:
                results[i] = run_command(command, bin_dir, env, cwd)
        for i, server in servers:
            actual, error = server.stop()
            results[i] = (actual, results[i][1] if results[i] else error)
        return [r or ("", "not run: a server before it did not start") for r in results]
    finally:
        lock.close()


def cmd_output(args):
    readme = pathlib.Path(args.readme).resolve()
    root = pathlib.Path(args.root).resolve()
    bin_dir = pathlib.Path(args.bin_dir).resolve()
    env = dict(os.environ)
    env.pop("PYTHONUNBUFFERED", None)  # what a student's shell has
    with tempfile.TemporaryDirectory() as shims:
        # `python3` in a README is the Python that CMake found.
        os.symlink(args.python, pathlib.Path(shims) / "python3")
        env["PATH"] = f"{shims}:{env.get('PATH', '')}"
        jobs = []
        with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
            for line, directives, commands in expected_blocks(readme):
                if any(is_server(command) for command, _ in commands):
                    block = pool.submit(run_server_block, commands, bin_dir, env, root)
                    for k, (command, expected) in enumerate(commands):
                        future = concurrent.futures.Future()
                        block.add_done_callback(lambda b, f=future, k=k: f.set_result(b.result()[k]))
                        jobs.append((line, command, expected, directives, future))
                    continue
                for command, expected in commands:
                    program = program_of(command)
                    skip = directives.get(program, "skip")
                    if skip:
                        print(f"skipped: $ {command}: {skip[0]}")
                        continue
                    if directives.get(program, "racy") and args.sanitizer == "thread":
                        print(f"skipped: $ {command}: a deliberate data race, which ThreadSanitizer stops")
                        continue
                    future = pool.submit(run_command, command, bin_dir, env, root)
                    jobs.append((line, command, expected, directives, future))
        for line, command, expected, directives, future in jobs:
            actual, error = future.result()
            problems = [error] if error else compare(command, expected, actual, directives)
            print(f"$ {command}\n{actual}", end="" if actual.endswith("\n") or not actual else "\n")
            for problem in problems:
                fail(f"{os.path.relpath(readme, root)}:{line}: $ {command}: {problem}")


# --- links --------------------------------------------------------------------------

LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE = re.compile(r"^\s*\[[^\]]+\]:\s*(\S+)", re.MULTILINE)


def cmd_links(args):
    checked = 0
    for name in args.files:
        path = pathlib.Path(name)
        text = re.sub(r"^```.*?^```", "", path.read_text(), flags=re.MULTILINE | re.DOTALL)
        for target in LINK.findall(text) + REFERENCE.findall(text):
            if re.match(r"[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
                continue  # a URL or an anchor in the same page
            file_part = target.split("#", 1)[0]
            checked += 1
            if not (path.parent / file_part).exists():
                fail(f"{path}: the link to '{target}' names nothing ({(path.parent / file_part).resolve()} "
                     "does not exist)")
    print(f"{checked} relative links checked in {len(args.files)} files")


# --- the checker itself -------------------------------------------------------------

BAD_FIXTURE_REASONS = [
    "unknown output-check directive 'varies'",
    "$ printf 'line 3\\nline 1\\n': lines 1-2 (in any order) differ",
    "$ printf 'slept 2.0\\n': line 1 differs: the README shows 'slept 1.0'",
    "$ printf 'a\\nb\\n': 2 lines, the README shows 1",
    "$ printf 'x 5\\n': line 1 differs: the README shows 'x 6', the program printed 'x 5'",
    "--exit 3 &: exit status 3 after SIGTERM, expected 0",
]


def cmd_self_test(args):
    fixtures = pathlib.Path(args.fixtures)
    results = {}
    for name in ("good.md", "bad.md"):
        print(f"== {name}")
        cmd_output(argparse.Namespace(readme=str(fixtures / name), root=str(fixtures), bin_dir=str(fixtures),
                                      python=sys.executable, sanitizer=""))
        results[name] = failures[:]
        failures.clear()
    print("== verdict")
    for message in results["good.md"]:
        fail(f"good.md was refused: {message}")
    for reason in BAD_FIXTURE_REASONS:
        if sum(reason in m for m in results["bad.md"]) != 1:
            fail(f"bad.md: expected one failure saying \"{reason}\", got {results['bad.md']}")
    if len(results["bad.md"]) != len(BAD_FIXTURE_REASONS):
        fail(f"bad.md: {len(results['bad.md'])} failures, expected {len(BAD_FIXTURE_REASONS)}")


def main():
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("output")
    p.add_argument("readme")
    p.add_argument("--root", required=True, help="the repository: commands run there")
    p.add_argument("--bin-dir", required=True, help="where the programs are (for build/default/bin/)")
    p.add_argument("--python", default=sys.executable, help="the python3 of the commands")
    p.add_argument("--sanitizer", default="")
    p = sub.add_parser("links")
    p.add_argument("files", nargs="+")
    p = sub.add_parser("self-test")
    p.add_argument("fixtures")
    args = parser.parse_args()
    {"output": cmd_output, "links": cmd_links, "self-test": cmd_self_test}[args.command](args)
    if failures:
        print(f"{len(failures)} check(s) failed", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
