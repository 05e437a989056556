"""manygil: Python on every core, in one process.

Each worker is a sub-interpreter with its own GIL (CPython >= 3.12, PEP 684) on its own thread, so
pure-Python work runs in parallel without processes.

    from manygil import Pool

    with Pool() as pool:                       # a concurrent.futures.Executor
        results = list(pool.map(work, items))

Public names: Pool (alias InterpreterPoolExecutor), Interpreter, actor (ActorHandle), SharedBuffer, Channel (and
ChannelClosed, ChannelEmpty, ChannelFull), Lock, Event, Semaphore, Barrier (threading's APIs, across
interpreters), BrokenPool, Interrupted, NotShareableError, RemoteError.
"""

from ._actor import ActorHandle, actor
from ._core import Barrier, Channel, ChannelClosed, ChannelEmpty, ChannelFull, Event, Lock, Semaphore, SharedBuffer
from ._errors import BrokenPool, Interrupted, NotShareableError, RemoteError
from ._interpreter import Interpreter
from ._pool import InterpreterPoolExecutor, Pool

__all__ = ["Pool", "InterpreterPoolExecutor", "Interpreter", "actor", "ActorHandle", "SharedBuffer", "Channel", "ChannelClosed",
           "ChannelEmpty", "ChannelFull", "Lock", "Event", "Semaphore", "Barrier", "BrokenPool", "Interrupted",
           "NotShareableError", "RemoteError"]
__version__ = "0.1.0"
