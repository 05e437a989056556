"""manygil.Pool: a concurrent.futures.Executor whose workers are own-GIL sub-interpreters."""

from __future__ import annotations  # annotations stay strings: typing is not imported at run time

import collections
import itertools
import os
import sys
import threading
import time
from concurrent.futures import Executor, Future
from concurrent.futures._base import PENDING, RUNNING

from . import _core, _errors, _lifecycle, _shipping, _source_fallback

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator
    from typing import Any, Literal, ParamSpec, TypeVar, overload

    _P = ParamSpec("_P")
    _T = TypeVar("_T")

# map() without a chunksize: enough chunks per worker to balance uneven items, and chunks large enough
# that per-chunk overhead vanishes for tiny ones.
_CHUNKS_PER_WORKER = 4
_MAX_AUTO_CHUNK = 1024


_Encoded = _core._EncodedResult  # a large result not decoded yet (ext/deferred_result.hpp)


def _decoded(value):
    return _core._decode_result(value) if type(value) is _Encoded else value


class _Future(Future):  # type: ignore[type-arg]  # Future[Any]: generic only to type checkers
    """A concurrent.futures.Future whose cancel() also withdraws the queued task from the workers,
    and whose large results are decoded by the thread that asks for them."""

    _handle = None
    # When the pool has a fallback: (pool, fn, args, kwargs) for a call, (pool, fn, items, star) for a
    # chunk of map().
    _route = None
    _fallback_reason = None  # the refusal that sent the task to the fallback (manygil.dask logs it)
    _rerouted = None  # the fallback's own Future, once the task runs there

    def _refused(self, exc):
        """Called instead of set_exception() when the task failed because a module refuses to load
        in an own-GIL interpreter: runs it through the pool's fallback, if it has one."""
        route, self._route = self._route, None
        if route is None:
            self.set_exception(exc)
            return
        pool, fn, args, kwargs = route
        self._fallback_reason = str(exc)
        try:
            inner = pool._fallback_submit(fn, args, kwargs)
        except BaseException as e:
            e.__context__ = exc
            self.set_exception(e)
            return

        def copy(done):
            error = done.exception()
            if error is None:
                self.set_result(done.result())
            else:
                self.set_exception(error)

        self._rerouted = inner
        inner.add_done_callback(copy)

    def _refused_chunk(self, outcome):
        """Called instead of set_result((results, exc)) when a chunk of map() stopped because a module
        refuses to load in an own-GIL interpreter: its remaining items (from the one that raised) run
        through the pool's fallback, in order, and the chunk's outcome is the two parts joined."""
        route, self._route = self._route, None
        if route is None:
            self.set_result(outcome)
            return
        pool, fn, items, star = route
        results, exc = outcome
        results = list(_decoded(results))
        self._fallback_reason = str(exc)
        try:
            inner = pool._fallback_submit(_run_chunk, (fn, items[len(results):], star), None)
        except BaseException as e:
            e.__context__ = exc
            self.set_result((results, e))
            return

        def copy(done):
            error = done.exception()
            if error is None:
                rest, rest_exc = done.result()
                self.set_result((results + rest, rest_exc))
            else:  # the fallback could not run the chunk at all (e.g. a function pickle cannot send)
                self.set_result((results, error))

        self._rerouted = inner
        inner.add_done_callback(copy)

    def _spin(self, timeout):
        """Before sleeping on the Future's condition: watch briefly, without the GIL, for the outcome
        (src/wait/spin_wait.hpp). A short task's result then needs no wake-up from the kernel. Returns what
        is left of `timeout`, so that spinning and sleeping together wait no longer than it."""
        handle = self._handle
        if handle is None or self._state not in (PENDING, RUNNING):
            return timeout
        if timeout is None:
            handle.spin(None)
            return None
        began = time.monotonic()
        handle.spin(timeout)
        return max(0.0, timeout - (time.monotonic() - began))

    def result(self, timeout=None):
        value = super().result(self._spin(timeout))
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

    def interrupt(self) -> bool:
        """Stops this task: a queued one is cancelled; a running one gets manygil.Interrupted (a
        TimeoutError) raised at its next Python bytecode, in its worker, which goes on serving.
        Returns True if the task was cancelled or is being interrupted, False if it had finished.
        A task inside C code that does not return to bytecode (time.sleep, a blocking read) only
        stops when that returns; Pool.stats() shows it with its interrupt pending."""
        if self.done():
            return False
        if self.cancel():
            return True
        rerouted = self._rerouted
        if rerouted is not None:  # running in the fallback: only a queued task can be stopped there
            return rerouted.cancel()
        handle = self._handle
        return handle is not None and handle.interrupt() and not self.done()

    def exception(self, timeout=None):
        exc = super().exception(self._spin(timeout))
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


def default_workers() -> int:
    """The number of CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def _setup_source(initializer, initargs, thread_name_prefix, source_report=None):
    """Python source each worker runs at start: the caller's sys.path, its main script, threads'
    names, the source fallback (where it reports, or None), the initializer."""
    lines = ["import sys", f"sys.path[:] = {list(sys.path)!r}", "from manygil import _core, _worker",
             f"_worker.setup({thread_name_prefix!r} + '_' + str(_core.worker_index()), {source_report!r})"]
    script = _shipping.main_script()
    if script:
        lines.append(f"_worker.main_script = {script!r}")
        # Workers know the script as __mp_main__; what they send back by reference must resolve here.
        sys.modules.setdefault("__mp_main__", sys.modules["__main__"])
    if initializer is not None:
        try:
            spec = _shipping.callable_spec(initializer)  # by name when workers can import it
            blob = _shipping.dumps((spec if isinstance(spec, str) else initializer, tuple(initargs)))
        except Exception as e:
            raise TypeError(f"cannot send the initializer {initializer!r} and its initargs to workers: {e}") from e
        lines.append(f"_worker.run_initializer({blob!r})")
    return "\n".join(lines) + "\n"


def _run_chunk(fn, items, star):
    """A chunk of map() where the fallback runs it (a thread of the main interpreter, or a process):
    (results, exception or None), the exception being that of the first item that raised, as a
    worker reports a chunk."""
    results = []
    try:
        for item in items:
            results.append(fn(*item) if star else fn(item))
    except Exception as e:
        return results, e
    return results, None


def _refuse_nested_pool():
    """A pool created in a worker: most often a script without the __main__ guard, which each worker
    re-runs (as module __mp_main__) to find the functions it defines. Say so, and show the fix, as
    multiprocessing does for its spawned children."""
    from . import _worker

    if _worker.running_main_script:
        raise RuntimeError(
            f"manygil re-runs your main script {_worker.main_script!r} in each worker, as module "
            "'__mp_main__', to find the functions it defines, and the script creates a pool while it is "
            "being imported there. Create pools (and run what uses them) only under the main guard:\n\n"
            "    if __name__ == \"__main__\":\n"
            "        with manygil.Pool() as pool:\n"
            "            ...\n\n"
            "as multiprocessing's spawn method requires too.")
    raise RuntimeError("manygil pools can only be created in the main interpreter: this code runs inside a "
                       "manygil worker, and nested pools are not supported")


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

    Pool(max_workers=None, thread_name_prefix="", initializer=None, initargs=(), *, fallback=None,
         reuse_interpreters=True, replace_stuck_after=None, max_tasks_per_child=None, max_tasks_jitter=0,
         source_fallback=None, pin_workers=False)

    ``max_workers`` defaults to the number of usable CPUs. Each worker's thread is named
    ``f"{thread_name_prefix}_{index}"`` (default prefix "manygil.Pool-N"), as ThreadPoolExecutor
    names its threads: threading.current_thread().name and log records say which worker ran what.
    ``initializer(*initargs)`` runs in each
    worker before it takes tasks; if it raises, the pool is broken (BrokenPool). ``fallback`` says
    what happens to a task that fails because a module refuses to load in an own-GIL interpreter:
    None raises that ImportError (default); "main" runs the task again on a thread of the main
    interpreter; "process" in a process pool. This holds for every way of running a task: submit,
    submit_with and map (whose chunks go on in the fallback from the item that was refused, results
    still in order). Re-routed tasks and chunks are counted in stats()["fallbacks"].

    ``source_fallback``: in workers, a compiled module that refuses own-GIL interpreters and whose
    Python source stands beside it (``name.py`` next to ``name.cpython-*.so``: Cython's pure-Python
    mode, as in SQLAlchemy 2.1 and charset-normalizer; mypyc's shims, as in tomli and black) is
    loaded from that source instead; slower, but it loads. Modules without their source, and those
    whose extension loads, are untouched; a source that fails to load gives the refusal back. Each
    module loaded so is logged once per process on the ``manygil`` logger (INFO) and listed in
    ``stats()["source_fallback"]``. None (default): on, unless the
    environment variable MANYGIL_SOURCE_FALLBACK is 0; False: off (an import that refuses raises, as
    ever); True: on.

    ``reuse_interpreters``: when the pool shuts down, its workers' interpreters are kept (up to the
    number of usable CPUs in the process) and the next pool with this option starts on them, in well
    under a millisecond instead of several per worker; they end at exit, or before ``os.fork()``. A
    reused interpreter keeps the modules earlier tasks imported, and their state (as a
    ThreadPoolExecutor's threads share them); sys.path, thread names and the initializer are set anew.
    Interpreters whose tasks left threads running or atexit callbacks registered are not kept.
    False: every worker creates a fresh interpreter and ends it at shutdown.

    ``replace_stuck_after`` (seconds): a worker whose call still runs that long after an interrupt
    (a task's timeout, ``interrupt()``, ``cancel()`` of a running task) is stuck in C code that never
    returns to Python (``time.sleep``, a blocking read). It is replaced by a new worker, so the pool
    keeps its size, and reported on stderr with its stack; the stuck one finishes its call (its
    future settles as usual) and then ends. ``stats()["replaced"]`` and ``stats()["stuck"]`` show
    them; ``shutdown(wait=True)`` still waits for a stuck call. None (default): never replaced.

    ``max_tasks_per_child`` (as ProcessPoolExecutor's; gunicorn's ``--max-requests``): a worker that
    has run that many tasks (a chunk of ``map`` counts as one), plus up to ``max_tasks_jitter`` more
    chosen at random per worker, is recycled: a successor (a new interpreter, the initializer run again) starts while it serves on,
    takes its place once ready, and the old one ends its interpreter after the task in hand. No task
    is dropped and the pool never has fewer ready workers; ``stats()["recycled"]`` counts them.
    Recycled interpreters are not kept for reuse. None (default): workers are never recycled.

    ``pin_workers``: worker i runs only on the (i mod n)-th of the n CPUs the process may use
    (``os.sched_getaffinity(0)``), and its successors on the same one. Busy workers that never sleep
    (event loops under load) can otherwise be left by the scheduler taking turns of several
    milliseconds on one CPU; pinned, each has its own. Use it when the workers are as many as the
    CPUs and are the machine's main load (``manygil serve`` does so by default): with fewer workers
    than CPUs, or several pinned pools on one machine, they would crowd the same CPUs. False
    (default): the kernel places the workers.

    Functions are sent by reference when workers can import them, else pickled by value (lambdas, closures, REPL code);
    arguments and results of the native types (None, bool, int, float, str, bytes, tuple, list,
    dict) cross without pickle, anything else is pickled. Exceptions are re-raised as their own type
    with the worker's traceback as ``__cause__``.
    """

    _counter = itertools.count().__next__

    def __init__(self, max_workers: int | None = None, thread_name_prefix: str = "",
                 initializer: Callable[..., object] | None = None, initargs: tuple[Any, ...] = (), *,
                 fallback: Literal["main", "process"] | None = None, reuse_interpreters: bool = True,
                 replace_stuck_after: float | None = None, max_tasks_per_child: int | None = None,
                 max_tasks_jitter: int = 0, source_fallback: bool | None = None, pin_workers: bool = False) -> None:
        if not _core.in_main_interpreter():
            _refuse_nested_pool()
        if fallback not in (None, "main", "process"):
            raise ValueError(f"fallback must be None, 'main' or 'process', not {fallback!r}")
        if max_workers is None:
            max_workers = default_workers()
        elif max_workers <= 0:
            raise ValueError("max_workers must be greater than 0")
        if replace_stuck_after is not None:
            if isinstance(replace_stuck_after, bool) or not isinstance(replace_stuck_after, (int, float)):
                raise TypeError("replace_stuck_after must be a number of seconds or None, not "
                                f"{type(replace_stuck_after).__name__}")
            if not replace_stuck_after > 0:
                raise ValueError(f"replace_stuck_after must be > 0, not {replace_stuck_after!r}")
        for name, value in (("max_tasks_per_child", max_tasks_per_child), ("max_tasks_jitter", max_tasks_jitter)):
            if value is None and name == "max_tasks_per_child":
                continue
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(f"{name} must be an int, not {type(value).__name__}")
        if max_tasks_per_child is not None and max_tasks_per_child < 1:
            raise ValueError("max_tasks_per_child must be >= 1")
        if max_tasks_jitter < 0:
            raise ValueError("max_tasks_jitter must be >= 0")
        if initializer is not None and not callable(initializer):
            raise TypeError("initializer must be a callable")
        if not isinstance(thread_name_prefix, str):
            raise TypeError(f"thread_name_prefix must be a str, not {type(thread_name_prefix).__name__}")
        self._thread_name_prefix = thread_name_prefix or f"manygil.Pool-{self._counter()}"
        self._max_workers = max_workers
        self._fallback = fallback
        self._fallback_executor = None
        self._fallback_lock = threading.Lock()
        self._fallbacks = 0
        if source_fallback is None:
            source_fallback = _source_fallback.enabled_by_env()
        self._source_collector = self._source_record = source_report = None
        if source_fallback:
            self._source_collector = _source_fallback.collector()
            self._source_record, source_report = self._source_collector.register(self._thread_name_prefix)
        self._core = _core.Pool(max_workers, _setup_source(initializer, initargs, self._thread_name_prefix, source_report),
                                _shipping.dumps, self._thread_name_prefix, bool(reuse_interpreters),
                                None if replace_stuck_after is None else float(replace_stuck_after),
                                max_tasks_per_child or 0, max_tasks_jitter if max_tasks_per_child else 0,
                                bool(pin_workers))
        _lifecycle.register(self)

    @property
    def max_workers(self) -> int:
        return self._max_workers

    @property
    def _broken(self) -> str | Literal[False]:
        """False, or why the pool is broken: the attribute concurrent.futures' executors have, which
        code in the ecosystem reads (as it reads ``_max_workers``)."""
        why = self._core.broken()
        if why is None:
            return False
        _errors.log_broken(why)
        return why

    if TYPE_CHECKING:
        @overload
        def submit(self, fn: Callable[_P, _T], /, *args: _P.args, **kwargs: _P.kwargs) -> Future[_T]: ...
        @overload
        def submit(self, fn: str, /, *args: Any, **kwargs: Any) -> Future[Any]: ...

    def submit(self, fn, /, *args, **kwargs):  # type: ignore[no-untyped-def]
        """Schedules ``fn(*args, **kwargs)``; returns a concurrent.futures.Future.

        ``fn`` may also be a "module:function" string. Raises RuntimeError after shutdown, BrokenPool
        once broken, NotShareableError (a TypeError) for an argument that cannot be sent.
        """
        return self._submit(fn, args, kwargs or None, None)

    def _submit(self, fn, args, kwargs, timeout, counted=True):
        """``counted`` False: the task does not count toward ``max_tasks_per_child`` (a probe of the
        workers that is none of the pool's work: ``manygil serve``'s interface detection)."""
        future = _Future()
        if self._fallback is not None:
            future._route = (self, fn, args, kwargs)
        spec = _shipping.callable_spec(fn)
        if counted:
            self._core.submit(future, spec, args, kwargs, timeout)  # sets future._handle
        else:
            self._core.submit(future, spec, args, kwargs, timeout, False)
        return future

    def _fallback_submit(self, fn, args, kwargs):
        """Runs a task that cannot run in a worker where Pool(fallback=...) says: "main" on a thread of
        the main interpreter, "process" in a process pool (forkserver: forking this process, which
        has sub-interpreters, would crash the child)."""
        import concurrent.futures as cf
        import multiprocessing

        with self._fallback_lock:
            if self._fallback_executor is None:
                if self._fallback == "main":
                    self._fallback_executor = cf.ThreadPoolExecutor(self._max_workers, thread_name_prefix="manygil-fallback")
                else:
                    methods = multiprocessing.get_all_start_methods()
                    context = multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")
                    self._fallback_executor = cf.ProcessPoolExecutor(self._max_workers, mp_context=context)
            self._fallbacks += 1
            return self._fallback_executor.submit(fn, *args, **(kwargs or {}))

    def map(self, fn: Callable[..., _T], *iterables: Iterable[Any], timeout: float | None = None,  # type: ignore[override]
            chunksize: int | None = None) -> Iterator[_T]:
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
            if self._fallback is not None:
                future._route = (self, fn, chunk, star)
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
                del future
                if more:
                    more = submit_next()
                # Yielded results are not kept here (concurrent.futures' guarantee, bpo-14406): each
                # leaves the list as it is yielded.
                results = list(_decoded(results))
                results.reverse()
                while results:
                    yield results.pop()
                if exc is not None:
                    raise exc
        finally:
            # Abandoned (an item raised, the consumer stopped, Ctrl-C): stop the rest of the work,
            # the queued chunks and the running ones alike.
            for future in window:
                future.interrupt()

    def submit_with(self, fn: Callable[..., _T] | str, args: Iterable[Any] = (), kwargs: dict[str, Any] | None = None,
                    *, timeout: float | None = None) -> Future[_T]:
        """submit(fn, *args, **kwargs) with options. ``timeout``: seconds the call may run once a
        worker starts it (time in the queue does not count); past it, manygil.Interrupted (a
        TimeoutError) is raised inside the call, the future gets it, and the worker goes on. A task
        the pool's fallback runs elsewhere (Pool(fallback=...)) runs there without the time limit."""
        if timeout is not None and not isinstance(timeout, (int, float)):
            raise TypeError(f"timeout must be a number of seconds or None, not {type(timeout).__name__}")
        return self._submit(fn, tuple(args), dict(kwargs) if kwargs else None, None if timeout is None else float(timeout))

    def stats(self) -> dict[str, Any]:
        """What each worker did and does: a dict ``{"workers": [...], "queued": n, "fallbacks": n,
        "replaced": n, "stuck": [...], "recycled": n, "source_fallback": [...]}``, one entry per worker: ``worker`` (index), ``interpreter_id``,
        ``tasks_done``, ``tasks_failed``, ``busy_s`` (seconds spent running tasks), ``current`` (None
        when idle, else ``task`` (its function), ``running_s``, ``interruptible``,
        ``interrupt_pending_s``: seconds since an interrupt that has not stopped it yet, or None).
        ``replaced`` counts the workers replaced because they were stuck (``replace_stuck_after``);
        ``stuck`` lists those whose call still runs, as entries like the workers' (``worker`` is the
        index they had); ``recycled`` counts the workers recycled after ``max_tasks_per_child``;
        ``source_fallback`` lists, sorted, the modules that any worker of this pool loaded from their
        Python source because their extension refuses own-GIL interpreters (``source_fallback=``)."""
        stats = self._core.stats()
        stats["fallbacks"] = self._fallbacks
        stats["source_fallback"] = []
        if self._source_record is not None:
            self._source_collector.drain()  # what workers reported before their tasks returned
            stats["source_fallback"] = sorted(self._source_record.modules)
        return stats

    def dump_stacks(self, timeout: float = 1.0) -> list[str]:
        """Each worker's current Python stack, as text (for "why is it stuck?"): one string per
        worker, "idle" when it runs nothing. A worker whose GIL cannot be had within ``timeout``
        seconds (C code holding it) is reported as such."""
        stacks = self._core.dump_stacks(float(timeout))
        stats = self._core.stats()["workers"]
        out = []
        for worker, stack in zip(stats, stacks):
            current = worker["current"]
            head = f"worker {worker['worker']} (interpreter {worker['interpreter_id']}): "
            head += f"running {current['task']} for {current['running_s']:.3f} s" if current else "idle"
            body = stack if stack is not None else f"(no stack: its GIL was not released within {timeout} s)"
            out.append(head + "\n" + body)
        return out

    async def run(self, fn: Callable[_P, _T], /, *args: _P.args, **kwargs: _P.kwargs) -> _T:
        """``await pool.run(fn, *args)``: submit() for asyncio, without blocking the event loop."""
        import asyncio

        return await asyncio.wrap_future(self.submit(fn, *args, **kwargs))

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False, timeout: float | None = None) -> None:
        """As Executor.shutdown: no new tasks; ``cancel_futures`` cancels the queued ones; ``wait``
        blocks until running (and, unless cancelled, queued) tasks are done and every worker
        interpreter has ended.

        ``timeout`` (with ``wait``): wait that many seconds, then interrupt the calls still running
        and every one that starts later (manygil.Interrupted), and wait up to one more second; if workers still run (C code that does
        not return to bytecode), raise TimeoutError naming them. The pool stays shut down; those
        workers end in the background when their call returns."""
        if self._fallback_executor is not None:
            self._fallback_executor.shutdown(wait=wait, cancel_futures=cancel_futures)
        if timeout is None or not wait:
            self._core.shutdown(wait, cancel_futures)
            return
        self._core.shutdown(False, cancel_futures)
        if self._core.wait_finished(max(0.0, float(timeout))):
            return
        # This call and every one that starts from now on (queued tasks too: the pool must stop).
        self._core.interrupt_running("manygil: interrupted by shutdown(timeout=...)", True)
        if self._core.wait_finished(1.0):
            return
        stuck = [f"worker {w['worker']} running {w['current']['task']} for {w['current']['running_s']:.1f} s"
                 for w in self._core.stats()["workers"] if w["current"]]
        raise TimeoutError(f"shutdown: workers still running after {timeout} s and an interrupt: "
                           + ("; ".join(stuck) or "(finishing)"))

    def _core_shut_down(self):
        return self._core.is_shut_down()

    def wait_ready(self) -> None:
        """Blocks until every worker has started; raises BrokenPool if one could not."""
        self._core.wait_ready()

    def interpreter_ids(self) -> list[int]:
        """The ids of the workers' interpreters (after wait_ready())."""
        return self._core.interpreter_ids()


InterpreterPoolExecutor = Pool
