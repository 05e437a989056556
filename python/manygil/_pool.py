"""manygil.Pool: a concurrent.futures.Executor whose workers are own-GIL sub-interpreters."""

import collections
import itertools
import os
import sys
import threading
import time
from concurrent.futures import Executor, Future

from . import _core, _lifecycle, _shipping

# map() without a chunksize: enough chunks per worker to balance uneven items, and chunks large enough
# that per-chunk overhead vanishes for tiny ones.
_CHUNKS_PER_WORKER = 4
_MAX_AUTO_CHUNK = 1024


_Encoded = _core._EncodedResult  # a large result not decoded yet (ext/deferred_result.hpp)


def _decoded(value):
    return _core._decode_result(value) if type(value) is _Encoded else value


class _Future(Future):
    """A concurrent.futures.Future whose cancel() also withdraws the queued task from the workers,
    and whose large results are decoded by the thread that asks for them."""

    _handle = None

    def result(self, timeout=None):
        value = super().result(timeout)
        if type(value) is _Encoded:
            with self._condition:  # decoded once, whichever thread asks first
                if type(self._result) is _Encoded:
                    try:
                        self._result = _core._decode_result(self._result)
                    except BaseException as e:
                        self._result, self._exception = None, e  # from now on, the task's error
                        raise
                value = self._result
        return value

    def exception(self, timeout=None):
        exc = super().exception(timeout)
        if exc is None and type(self._result) is _Encoded:
            try:
                self.result()
            except BaseException as e:
                return e
        return exc

    def cancel(self):
        handle = self._handle
        if handle is not None and not handle.cancel():
            return False  # a worker has started it
        return super().cancel()

    def running(self):
        # The worker marks the task started without the caller's GIL; the Future's own state is only
        # updated when it completes.
        handle = self._handle
        return handle is not None and handle.started() and not self.done()


def default_workers():
    """The number of CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def _setup_source(initializer, initargs):
    """Python source each worker runs at start: the caller's sys.path, its main script, the initializer."""
    lines = ["import sys", f"sys.path[:] = {list(sys.path)!r}", "from manygil import _worker"]
    script = _shipping.main_script()
    if script:
        lines.append(f"_worker.main_script = {script!r}")
        # Workers know the script as __mp_main__; what they send back by reference must resolve here.
        sys.modules.setdefault("__mp_main__", sys.modules["__main__"])
    if initializer is not None:
        try:
            blob = _shipping.dumps((initializer, tuple(initargs)))
        except Exception as e:
            raise TypeError(f"cannot send the initializer {initializer!r} and its initargs to workers: {e}") from e
        lines.append(f"_worker.run_initializer({blob!r})")
    return "\n".join(lines) + "\n"


def _chunk_sizes(chunksize, iterables, workers):
    if chunksize is not None:
        return itertools.repeat(chunksize)
    try:
        n = min(len(it) for it in iterables)
    except TypeError:  # no len(): ramp up 1, 2, 4, ... so short iterables still spread over workers
        return itertools.chain((1 << i for i in range(10)), itertools.repeat(_MAX_AUTO_CHUNK))
    size = -(-n // (_CHUNKS_PER_WORKER * workers))
    return itertools.repeat(max(1, min(_MAX_AUTO_CHUNK, size)))


class Pool(Executor):
    """A pool of own-GIL interpreters, one per worker thread, behind the concurrent.futures API.

    Pool(max_workers=None, *, initializer=None, initargs=())

    ``max_workers`` defaults to the number of usable CPUs. ``initializer(*initargs)`` runs in each
    worker before it takes tasks; if it raises, the pool is broken (BrokenPool). Functions are sent by
    reference when workers can import them, else pickled by value (lambdas, closures, REPL code);
    arguments and results of the native types (None, bool, int, float, str, bytes, tuple, list,
    dict) cross without pickle, anything else is pickled. Exceptions are re-raised as their own type
    with the worker's traceback as ``__cause__``.
    """

    def __init__(self, max_workers=None, *, initializer=None, initargs=()):
        if max_workers is None:
            max_workers = default_workers()
        elif max_workers <= 0:
            raise ValueError("max_workers must be greater than 0")
        if initializer is not None and not callable(initializer):
            raise TypeError("initializer must be a callable")
        self._max_workers = max_workers
        self._core = _core.Pool(max_workers, _setup_source(initializer, initargs), _shipping.dumps)
        _lifecycle.register(self)

    @property
    def max_workers(self):
        return self._max_workers

    def submit(self, fn, /, *args, **kwargs):
        """Schedules ``fn(*args, **kwargs)``; returns a concurrent.futures.Future.

        ``fn`` may also be a "module:function" string. Raises RuntimeError after shutdown, BrokenPool
        once broken, NotShareableError (a TypeError) for an argument that cannot be sent.
        """
        future = _Future()
        self._core.submit(future, _shipping.callable_spec(fn), args, kwargs or None)  # sets future._handle
        return future

    def map(self, fn, *iterables, timeout=None, chunksize=None):
        """Like Executor.map: results in order, ``timeout`` counted from this call.

        Items travel in chunks of ``chunksize`` (default: len / (4 * workers), at most 1024, or a
        ramp 1, 2, 4, ... 1024 for iterables without len()). Items are read lazily with at most
        2 * workers + 1 chunks in flight, so long or infinite iterables use bounded memory. An exception
        is raised when iteration reaches the item that raised it; later items of its chunk do not run.
        """
        if chunksize is not None and chunksize < 1:
            raise ValueError("chunksize must be >= 1.")
        if not iterables:
            return iter(())
        end_time = None if timeout is None else timeout + time.monotonic()
        spec = _shipping.callable_spec(fn)
        star = len(iterables) != 1
        items = zip(*iterables) if star else iter(iterables[0])
        sizes = _chunk_sizes(chunksize, iterables, self._max_workers)
        window = collections.deque()

        def submit_next():
            chunk = list(itertools.islice(items, next(sizes)))
            if not chunk:
                return False
            future = _Future()
            self._core.submit_chunk(future, spec, chunk, star)
            window.append(future)
            return True

        more = True
        for _ in range(2 * self._max_workers + 1):  # start the work now, as Executor.map does
            more = submit_next()
            if not more:
                break
        return self._results(window, submit_next, more, end_time)

    @staticmethod
    def _results(window, submit_next, more, end_time):
        try:
            while window:
                future = window[0]
                if end_time is None:
                    results, exc = future.result()
                else:
                    results, exc = future.result(end_time - time.monotonic())
                window.popleft()
                if more:
                    more = submit_next()
                yield from _decoded(results)
                if exc is not None:
                    raise exc
        finally:
            for future in window:
                future.cancel()

    async def run(self, fn, /, *args, **kwargs):
        """``await pool.run(fn, *args)``: submit() for asyncio, without blocking the event loop."""
        import asyncio

        return await asyncio.wrap_future(self.submit(fn, *args, **kwargs))

    def shutdown(self, wait=True, *, cancel_futures=False):
        """As Executor.shutdown: no new tasks; ``cancel_futures`` cancels the queued ones; ``wait``
        blocks until running (and, unless cancelled, queued) tasks are done and every worker
        interpreter has ended."""
        self._core.shutdown(wait, cancel_futures)

    def _core_shut_down(self):
        return self._core.is_shut_down()

    def wait_ready(self):
        """Blocks until every worker has started; raises BrokenPool if one could not."""
        self._core.wait_ready()

    def interpreter_ids(self):
        """The ids of the workers' interpreters (after wait_ready())."""
        return self._core.interpreter_ids()


InterpreterPoolExecutor = Pool
