"""manygil pools as Dask's executors, for ``distributed`` workers.

A Dask worker is then one process whose tasks run on every core, in own-GIL interpreters:

- ``SubinterpreterExecutor(workers)``: a ``concurrent.futures`` executor that ``distributed``'s
  worker can use (``worker.executors[name]``). For each task it ships only the task and its input
  data to an interpreter and builds ``distributed``'s result message back in the main interpreter
  (``distributed`` itself cannot be imported in an own-GIL interpreter: psutil refuses).
- ``ManygilPlugin(workers=N, name="manygil", default=False)``: a ``WorkerPlugin`` that gives each
  worker such an executor. Route tasks to it with ``dask.annotate(executor="manygil")``, or make it
  every task's executor with ``default=True``.
- As a preload module: ``dask worker --preload manygil.dask --nthreads N SCHEDULER``
  (``MANYGIL_DASK_DEFAULT=1`` makes it the default executor).

A worker runs at most ``nthreads`` tasks at once, whatever its executors: give it as many threads as
interpreters (``--nthreads N``, ``LocalCluster(threads_per_worker=N)``). The number of interpreters
defaults to the worker's nthreads.

A task whose modules refuse own-GIL interpreters re-runs on a thread in the main interpreter (counted
in the executor's ``metrics()``, logged once per module) unless ``fallback=False``.

Import this module in the main interpreter only (it imports ``distributed``).
"""

from __future__ import annotations

import concurrent.futures
import logging
import os
import re
import threading

from distributed.diagnostics.plugin import WorkerPlugin

from . import _compat_probe
from ._dask_task import run_task
from ._pool import Pool

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

__all__ = ["ManygilPlugin", "SubinterpreterExecutor", "dask_setup", "dask_teardown"]

logger = logging.getLogger("manygil.dask")
_REFUSED = re.compile(_compat_probe.REFUSAL_PATTERN)


class _Replay:
    """Stands for a task already run elsewhere: returns its result (or raises its error) when
    distributed's _run_task_simple calls it, so distributed builds its own message."""

    def __init__(self, future: concurrent.futures.Future[Any]) -> None:
        self.future = future

    def __call__(self, data: object) -> Any:
        return self.future.result()[0]


class SubinterpreterExecutor(concurrent.futures.Executor):
    """An executor of ``workers`` own-GIL interpreters for a ``distributed`` worker. Anything
    submitted runs on the pool; ``distributed``'s task runner (``_run_task_simple``) is recognised,
    and only the task and its data cross to the interpreter."""

    def __init__(self, workers: int | None = None, *, fallback: bool = True, name: str = "manygil") -> None:
        self._pool = Pool(workers, thread_name_prefix=f"dask-{name}", fallback="main" if fallback else None)
        self._max_workers = self._pool.max_workers
        self._lock = threading.Lock()
        self._refused: set[str] = set()
        self.name = name

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> concurrent.futures.Future[Any]:
        if getattr(fn, "__name__", "") == "_run_task_simple" and getattr(fn, "__module__", "") == "distributed.worker":
            task, data, delay = args
            inner = self._pool.submit(run_task, task, data)
            outer: concurrent.futures.Future[Any] = concurrent.futures.Future()
            inner.add_done_callback(lambda f: self._finish(f, outer, fn, data, delay))
            return outer
        return self._pool.submit(fn, *args, **kwargs)

    def _finish(self, inner: concurrent.futures.Future[Any], outer: concurrent.futures.Future[Any],
                run_task: Callable[..., Any], data: dict[Any, Any], delay: float) -> None:
        self._note_refusal(inner)
        try:
            msg = run_task(_Replay(inner), data, delay)  # distributed's own message: result or error
            if msg.get("op") == "task-finished":
                _, start, stop = inner.result()
                msg["start"], msg["stop"] = start + delay, stop + delay  # when it ran, not when replayed
        except BaseException as e:  # noqa: BLE001 - SystemExit/KeyboardInterrupt from the task
            outer.set_exception(e)
            return
        outer.set_result(msg)

    def _note_refusal(self, inner: concurrent.futures.Future[Any]) -> None:
        why = getattr(inner, "_fallback_reason", None)
        if not why:
            return
        found = _REFUSED.search(str(why))
        module = found.group(1).strip("'\"") if found else str(why)
        with self._lock:
            if module in self._refused:
                return
            self._refused.add(module)
        logger.warning("manygil: a task needs %s, which refuses own-GIL interpreters; such tasks run on a "
                       "thread of the worker's main interpreter instead", module)

    def metrics(self) -> dict[str, float]:
        """Tasks done and failed, busy seconds (summed over interpreters), tasks re-run on a thread."""
        stats = self._pool.stats()
        workers = stats["workers"]
        return {"tasks": sum(w["tasks_done"] for w in workers), "failed": sum(w["tasks_failed"] for w in workers),
                "busy_s": sum(w["busy_s"] for w in workers), "fallbacks": stats["fallbacks"],
                "queued": stats["queued"]}

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        self._pool.shutdown(wait=wait, cancel_futures=cancel_futures)


class ManygilPlugin(WorkerPlugin):
    """Gives each worker a SubinterpreterExecutor of ``workers`` interpreters (default: the worker's
    nthreads, which bounds how many tasks it runs at once), as
    ``worker.executors[name]``; with ``default=True`` also as its default executor (the thread pool it
    replaces stays available as ``worker.executors["threads"]``). The executor's ``metrics()`` appear in
    the worker's metrics under ``name``."""

    def __init__(self, workers: int | None = None, name: str = "manygil", default: bool = False,
                 fallback: bool = True) -> None:
        self.workers = workers
        self.executor_name = name
        self.default = default
        self.fallback = fallback
        self.name = f"manygil-{name}"  # the plugin's name on the worker: registering twice replaces it

    def setup(self, worker: Any) -> None:
        # The worker runs at most nthreads tasks at once: as many interpreters, unless told otherwise.
        workers = self.workers if self.workers is not None else worker.state.nthreads
        executor = SubinterpreterExecutor(workers, fallback=self.fallback, name=self.executor_name)
        worker.executors[self.executor_name] = executor
        if self.default:
            worker.executors["threads"] = worker.executors["default"]
            worker.executors["default"] = executor
        worker.metrics[self.executor_name] = lambda w: executor.metrics()

    def teardown(self, worker: Any) -> None:
        executor = worker.executors.get(self.executor_name)
        if self.default and "threads" in worker.executors:
            worker.executors["default"] = worker.executors.pop("threads")
        worker.executors.pop(self.executor_name, None)
        worker.metrics.pop(self.executor_name, None)
        if isinstance(executor, SubinterpreterExecutor):
            executor.shutdown(wait=False)


def dask_setup(worker: Any) -> None:
    """Preload hook (``dask worker --preload manygil.dask``): a ManygilPlugin on this worker, with
    ``MANYGIL_DASK_WORKERS`` interpreters (default: the worker's nthreads)."""
    workers = os.environ.get("MANYGIL_DASK_WORKERS")
    plugin = ManygilPlugin(workers=int(workers) if workers else None,
                           default=os.environ.get("MANYGIL_DASK_DEFAULT", "") not in ("", "0"))
    plugin.setup(worker)
    worker._manygil_preload_plugin = plugin


def dask_teardown(worker: Any) -> None:
    plugin = getattr(worker, "_manygil_preload_plugin", None)
    if plugin is not None:
        plugin.teardown(worker)
