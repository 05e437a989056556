"""Runs bare-CPython reproducers of the sub-interpreter crashes in docs/cpython-bugs.md against one or
more Pythons, and prints how often each one took its process down.

    python tools/cpython_bugs.py [--runs N] PYTHON [PYTHON ...]      (make cpython-bugs)

The reproducers use only the stdlib's _interpreters module (3.13+), not manygil: they tell whether a
CPython release still has a bug, whatever manygil does about it. manygil's own regression tests for
the fenced ones are in tests/python/test_crash_fences.py. Each run is a child process with a timeout;
a run "crashes" when its process dies of a signal or a fatal error, or prints the wrong answer.
"""

import argparse
import signal
import subprocess
import sys
import textwrap

# 4 threads each create 20 isolated interpreters that import datetime, then end them; {prelude} is
# what the main interpreter runs first.
DATETIME_RACE = """
{prelude}
import threading, _interpreters as I
def worker():
    for _ in range(20):
        iid = I.create("isolated")
        I.exec(iid, "import datetime; datetime.datetime.now()")
        I.destroy(iid)
threads = [threading.Thread(target=worker) for _ in range(4)]
for t in threads: t.start()
for t in threads: t.join()
print("ok")
"""

# name -> (what it shows, code run with `python -c`, expected stdout, extra interpreter options)
REPRODUCERS = {
    "datetime-race": (
        "4 threads each create 20 isolated interpreters that import datetime, then end them "
        "(gh-136421, gh-136423)",
        DATETIME_RACE.format(prelude=""), "ok", []),
    "datetime-race, main first": (
        "the same, with datetime imported in the main interpreter first (manygil's fence)",
        DATETIME_RACE.format(prelude="import datetime"), "ok", []),
    "current-frames": (
        "the main interpreter calls sys._current_frames() while an isolated interpreter runs Python "
        "on another thread (no upstream issue found)",
        """
        import sys, threading, time, _interpreters as I
        def worker():
            iid = I.create("isolated")
            I.exec(iid, "import time\\nt = time.monotonic()\\nwhile time.monotonic() - t < 1.5: sum(range(50))")
            I.destroy(iid)
        t = threading.Thread(target=worker)
        t.start()
        time.sleep(0.2)
        while t.is_alive():
            sys._current_frames(); sys._current_exceptions()
        t.join()
        print("ok")
        """, "ok", []),
    "fork": (
        "os.fork() while an isolated interpreter exists: does the child run? (gh-139759)",
        """
        import os, _interpreters as I
        iid = I.create("isolated")
        pid = os.fork()
        if pid == 0:
            os._exit(7)
        _, status = os.waitpid(pid, 0)
        I.destroy(iid)
        print("ok" if os.WIFEXITED(status) and os.WEXITSTATUS(status) == 7 else f"child died: {status}")
        """, "ok", []),
}


def run_once(python, code, expected, options, timeout=30):
    try:
        proc = subprocess.run([python, *options, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                              timeout=timeout)
    except subprocess.TimeoutExpired:
        return "hangs"
    if proc.returncode < 0:
        try:
            return signal.Signals(-proc.returncode).name
        except ValueError:
            return f"signal {-proc.returncode}"
    if proc.returncode != 0 or proc.stdout.strip() != expected:
        lines = (proc.stdout.strip() or proc.stderr.strip()).splitlines()
        return (lines[-1] if lines else f"exit code {proc.returncode}")[:60]
    return "ok"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("pythons", nargs="+", metavar="PYTHON")
    parser.add_argument("--runs", type=int, default=10, help="runs of each reproducer per Python (default 10)")
    args = parser.parse_args(argv)
    versions = [subprocess.run([p, "-c", "import sys; print(sys.version.split()[0])"], capture_output=True,
                               text=True, check=True).stdout.strip() for p in args.pythons]
    print("| reproducer | " + " | ".join(f"CPython {v}" for v in versions) + " |")
    print("|---|" + "---|" * len(versions))
    for name, (_what, code, expected, options) in REPRODUCERS.items():
        cells = []
        for python in args.pythons:
            outcomes = [run_once(python, code, expected, options) for _ in range(args.runs)]
            failed = [o for o in outcomes if o != "ok"]
            kinds = ", ".join(sorted(set(failed)))
            cells.append(f"{len(failed)}/{args.runs} died" + (f" ({kinds})" if kinds else ""))
            print(f"  {name} on {python}: {cells[-1]}", file=sys.stderr, flush=True)
        print(f"| {name} | " + " | ".join(cells) + " |", flush=True)
    print()
    for name, (what, *_rest) in REPRODUCERS.items():
        print(f"- {name}: {what}")


if __name__ == "__main__":
    main()
