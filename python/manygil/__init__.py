"""manygil: Python on every core, in one process.

Each worker is a sub-interpreter with its own GIL (CPython >= 3.12, PEP 684) on its own thread, so
pure-Python work runs in parallel without processes.

    from manygil import Pool

    with Pool() as pool:                       # a concurrent.futures.Executor
        results = list(pool.map(work, items))

Public names (each exported once, from the module named in _PUBLIC below; a test holds this list,
__all__ and the type checkers' imports at the end of this file to one another):

- Pool: the executor, a concurrent.futures.Executor whose workers are own-GIL interpreters.
- InterpreterPoolExecutor: Pool, under the name of Python 3.14's executor.
- Interpreter: one own-GIL interpreter for direct use (exec, call, close).
- actor: creates an object inside an interpreter of its own; returns an ActorHandle.
- ActorHandle: the handle actor() returns; method calls return Futures, run in order.
- call_in_main: from a worker, a call made in the main interpreter, where every module loads.
- call_in_main_with: call_in_main with options (timeout), as submit_with is to submit.
- SharedBuffer: memory every interpreter shares by reference (the buffer protocol).
- SharedDict: a dict every interpreter reads and writes (atomic incr, compare_and_set, update); with
  max_bytes and ttl, a cache for every worker.
- Channel: a queue between any interpreters and threads.
- ChannelClosed: raised by a closed Channel's send, and its recv once drained.
- ChannelEmpty: Channel.recv_nowait found nothing (a queue.Empty).
- ChannelFull: Channel.send_nowait found no room (a queue.Full).
- Lock: threading.Lock's API, across interpreters.
- Event: threading.Event's API, across interpreters.
- Semaphore: threading.Semaphore's API, across interpreters.
- Barrier: threading.Barrier's API, across interpreters.
- Server: a WSGI server in the background (manygil serve from Python).
- serve: serves a WSGI application until SIGTERM or SIGINT.
- AppLoadError: the application did not load in a worker.
- BrokenPool: a pool whose initializer failed (concurrent.futures' BrokenExecutor).
- Interrupted: a call stopped by an interrupt or a time limit (a TimeoutError).
- NotShareableError: a value that cannot travel between interpreters (a TypeError).
- RemoteError: a worker's exception whose type could not be rebuilt.
"""

import importlib
TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (5 ms); checkers treat it alike

# Where each public name lives. They are imported on first use (PEP 562): every worker imports this
# package at start, and what the main interpreter's executor needs (concurrent.futures) or an actor's
# asyncio support costs tens of milliseconds there.
_PUBLIC = {
    "Pool": "_pool", "InterpreterPoolExecutor": "_pool", "Interpreter": "_interpreter",
    "actor": "_actor", "ActorHandle": "_actor", "call_in_main": "_main_call", "call_in_main_with": "_main_call",
    "SharedBuffer": "_core", "SharedDict": "_core", "Channel": "_core", "ChannelClosed": "_core", "ChannelEmpty": "_core",
    "ChannelFull": "_core", "Lock": "_core", "Event": "_core", "Semaphore": "_core", "Barrier": "_core",
    "Server": "_serve", "serve": "_serve", "AppLoadError": "_serve",
    "BrokenPool": "_errors", "Interrupted": "_errors", "NotShareableError": "_errors", "RemoteError": "_errors",
}
__all__ = list(_PUBLIC)
__version__ = "0.1.0"


def _protect_forked_children():
    """In the main interpreter, from import on: multiprocessing defaults to forkserver, not fork, whose
    children die once this process has sub-interpreters (CPython gh-139759; 3.14 made forkserver the
    default on Linux). A start method the program chose is kept. Workers import this package too,
    where _worker.setup makes spawn the default instead."""
    from . import _core

    if _core.in_main_interpreter():
        from . import _worker

        _worker.protect_forked_children()


_protect_forked_children()


def __getattr__(name):
    module = _PUBLIC.get(name)
    if module is None:
        if name.startswith("_") and not name.startswith("__"):  # a submodule: manygil._core
            try:
                return importlib.import_module(f"{__name__}.{name}")
            except ModuleNotFoundError:
                pass
        raise AttributeError(f"module 'manygil' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))


if TYPE_CHECKING:  # what type checkers and IDEs see ("X as X": re-exported names)
    from ._actor import ActorHandle as ActorHandle, actor as actor
    from ._core import (Barrier as Barrier, Channel as Channel, ChannelClosed as ChannelClosed,
                        ChannelEmpty as ChannelEmpty, ChannelFull as ChannelFull, Event as Event, Lock as Lock,
                        Semaphore as Semaphore, SharedBuffer as SharedBuffer, SharedDict as SharedDict)
    from ._errors import (BrokenPool as BrokenPool, Interrupted as Interrupted,
                          NotShareableError as NotShareableError, RemoteError as RemoteError)
    from ._interpreter import Interpreter as Interpreter
    from ._main_call import call_in_main as call_in_main, call_in_main_with as call_in_main_with
    from ._pool import InterpreterPoolExecutor as InterpreterPoolExecutor, Pool as Pool
    from ._serve import AppLoadError as AppLoadError, Server as Server, serve as serve
