"""Command-line rules shared by the Python originals of the labs.

The same flags and exit codes as the C++ programs (see docs/DESIGN.md): --help
exits 0; a bad flag or value prints one line on stderr and exits 2. And, as
in the C++ programs, stdout is line-buffered even into a pipe, so that each
line appears when it is printed: what a lab shows by *when* lines appear
survives `| cat` and `| tee`.
"""
import argparse
import sys

sys.stdout.reconfigure(line_buffering=True)


class OneLineParser(argparse.ArgumentParser):
    def error(self, message):
        print(f"{self.prog}: {message} (see --help)", file=sys.stderr)
        sys.exit(2)


def bounded_int(upper, lower=1):
    """An argparse type: an integer in [lower, upper], else a clear message."""
    def parse(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not an integer: {text!r}")
        if not lower <= value <= upper:
            raise argparse.ArgumentTypeError(f"{value} not in [{lower} - {upper}]")
        return value
    return parse


def one_line_parser(description):
    """An ArgumentParser that reports a bad flag or value in one line, exit 2."""
    return OneLineParser(description=description)


def worker_args(description, tasks=5, sleep_ms=1000):
    """Parse --tasks and --sleep-ms, as conclab::add_worker_flags does."""
    parser = OneLineParser(description=description)
    parser.add_argument("--tasks", type=bounded_int(100_000), default=tasks,
                        help="number of workers (default %(default)s)")
    parser.add_argument("--sleep-ms", type=bounded_int(3_600_000), default=sleep_ms,
                        help="how long each worker sleeps, in milliseconds (default %(default)s)")
    return parser.parse_args()


def counter_args(description, threads=2, increments=1_000_000):
    """Parse --threads and --increments, as conclab::add_counter_flags does."""
    parser = OneLineParser(description=description)
    parser.add_argument("--threads", type=bounded_int(1_000), default=threads,
                        help="number of threads (default %(default)s)")
    parser.add_argument("--increments", type=bounded_int(100_000_000), default=increments,
                        help="increments per thread (default %(default)s)")
    return parser.parse_args()



def net_parser(description, port, host="127.0.0.1", role="listen on"):
    """An ArgumentParser with --host and --port, as conclab::add_net_flags.

    The caller adds its own flags, then calls parse_args()."""
    parser = OneLineParser(description=description)
    parser.add_argument("--host", default=host, help=f"host name or address to {role} (default %(default)s)")
    extra = " (0: any free port)" if role == "listen on" else ""
    parser.add_argument("--port", type=bounded_int(65535, lower=0), default=port,
                        help=f"port to {role}{extra} (default %(default)s)")
    return parser


def stop_on_signals():
    """Make SIGTERM stop the program as Ctrl-C (SIGINT) does: KeyboardInterrupt.

    A server catches KeyboardInterrupt around its loop and exits 0, as the
    C++ servers do (conclab::stop_on_signals)."""
    import signal

    def stop(signo, frame):
        raise KeyboardInterrupt(signal.Signals(signo).name)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
