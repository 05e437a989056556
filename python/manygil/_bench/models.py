"""The execution models `manygil bench` compares, behind one small interface.

Each model starts once (its start-up time and idle memory are measured then) and runs every workload
through map(); a model that cannot start says why (Unavailable) and the run goes on without it.
"""

import concurrent.futures as cf
import glob
import multiprocessing
import os
import shutil
import sys
import time

from . import workloads


class Unavailable(Exception):
    """The model cannot run here; the message says why (and how to get it, when there is a way)."""


def rss_bytes(pid="self"):
    try:
        with open(f"/proc/{pid}/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


class Model:
    name = "?"
    shares_buffers = False  # can a manygil.SharedBuffer reach its tasks?

    def __init__(self):
        self.startup_s = None
        self.rss_per_worker_mb = None

    def start(self, workers):
        before = rss_bytes()
        t0 = time.perf_counter()
        self._start(workers)
        self.warm(workers)
        self.startup_s = time.perf_counter() - t0
        self.rss_per_worker_mb = (self._rss_now() - before) / workers / 2**20

    def warm(self, workers):
        """Every worker up and having run a task (lazily started pools start here). The task is a
        builtin: start-up is the pool's own cost, not that of importing the workloads' module (which
        the first round of each workload pays; the best round is kept)."""
        self.map(abs, list(range(4 * workers)))

    def _rss_now(self):
        return rss_bytes()

    def map(self, fn, items, chunksize=1):
        return list(self.executor.map(fn, items, chunksize=chunksize))

    def call(self, fn, arg):
        return self.executor.submit(fn, arg).result()

    def stop(self):
        self.executor.shutdown(wait=True, cancel_futures=True)


class Serial(Model):
    name = "serial"
    shares_buffers = True

    def _start(self, workers):
        pass

    def warm(self, workers):
        pass

    def map(self, fn, items, chunksize=1):
        return [fn(x) for x in items]

    def call(self, fn, arg):
        return fn(arg)

    def stop(self):
        pass


class Threads(Model):
    name = "threads"
    shares_buffers = True

    def _start(self, workers):
        self.executor = cf.ThreadPoolExecutor(workers)


class Processes(Model):
    def __init__(self, method):
        super().__init__()
        self.method = method
        self.name = f"processes ({method})"

    def _start(self, workers):
        if self.method not in multiprocessing.get_all_start_methods():
            raise Unavailable(f"no {self.method} start method on this platform")
        self.executor = cf.ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context(self.method))

    def _rss_now(self):
        children = getattr(self.executor, "_processes", None) or {}
        return rss_bytes() + sum(rss_bytes(pid) for pid in children)


class StdlibInterpreters(Model):
    """concurrent.futures.InterpreterPoolExecutor (3.14+), or its PyPI backport on 3.12/3.13."""

    name = "stdlib interpreters"

    def _start(self, workers):
        executor_type = getattr(cf, "InterpreterPoolExecutor", None)
        if executor_type is None:
            try:
                from interpreters_backport.concurrent.futures import InterpreterPoolExecutor as executor_type
            except ImportError as e:
                raise Unavailable(f"needs Python 3.14+ or `pip install interpreters-pep-734` ({e})") from None
        self.executor = executor_type(workers)


class Manygil(Model):
    name = "manygil"
    shares_buffers = True

    def _start(self, workers):
        import manygil

        self.executor = manygil.Pool(workers)
        self.executor.wait_ready()

    def map(self, fn, items, chunksize=1):
        return list(self.executor.map(fn, items, chunksize=chunksize))  # None: manygil's own chunking


def find_free_threaded_python():
    """A free-threaded CPython: python3.14t / python3.13t on PATH, or the one `make peers` builds."""
    for name in ("python3.14t", "python3.13t"):
        path = shutil.which(name)
        if path:
            return path
    cache = os.environ.get("MANYGIL_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "manygil")
    found = sorted(glob.glob(os.path.join(cache, "cpython-*-ft", "bin", "python3.*t")))
    return found[-1] if found else None


def free_threaded_unavailable_reason():
    return "no python3.13t/python3.14t found (`make peers` builds one, about 3 minutes)"


def process_start_methods():
    """The ProcessPoolExecutor variants: fork (Linux's default before 3.14) and spawn."""
    return ["fork", "spawn"] if sys.platform != "win32" else ["spawn"]
