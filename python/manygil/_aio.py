"""asyncio waits on manygil's shared objects with neither a thread nor a poll: Channel.recv_async.

Each running loop gets one _ChannelWaker (an eventfd the loop watches with add_reader). A wait that
finds its channel empty arms the channel with the waker and a token of its own; the channel's next
send or close (from any thread or interpreter) marks the token ready and makes the eventfd readable;
the loop then wakes exactly the waits whose tokens are ready, and each tries its channel again. A
message is only ever taken by recv_nowait, so a wait that is cancelled or times out takes nothing:
another receiver gets the message instead.
"""

from __future__ import annotations

import asyncio
import itertools
import weakref

from . import _core


class _LoopWaker:
    """The waker of one event loop, and the futures of the waits armed with it, by token. It holds
    no reference to its loop: the loop holds it (through add_reader), and ends it."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.waker = _core._ChannelWaker()
        self.waits: dict[int, asyncio.Future[None]] = {}
        self.tokens = itertools.count(1)
        loop.add_reader(self.waker.fileno(), self._wake)

    def _wake(self) -> None:
        for token in self.waker.take_ready():
            future = self.waits.get(token)
            if future is not None and not future.done():
                future.set_result(None)


_wakers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopWaker] = weakref.WeakKeyDictionary()


def _loop_waker(loop: asyncio.AbstractEventLoop) -> _LoopWaker:
    waker = _wakers.get(loop)
    if waker is None:
        waker = _wakers[loop] = _LoopWaker(loop)
    return waker


def _expire(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


async def channel_recv(channel: _core.Channel, timeout: float | None = None) -> object:
    """Channel.recv_async (the C type calls this through the package's hooks): see its docstring."""
    if timeout is not None:
        timeout = float(timeout)
        if not timeout >= 0:
            raise ValueError(f"timeout must be >= 0 or None, not {timeout!r}")
    loop = asyncio.get_running_loop()
    deadline = None if timeout is None else loop.time() + timeout
    waker = _loop_waker(loop)
    while True:
        try:
            return channel.recv_nowait()  # ChannelClosed (closed and drained) goes to the caller
        except _core.ChannelEmpty:
            pass
        if deadline is not None and loop.time() >= deadline:
            raise _core.ChannelEmpty(f"no message within {timeout} s")
        token = next(waker.tokens)
        future = loop.create_future()
        waker.waits[token] = future
        timer = None if deadline is None else loop.call_at(deadline, _expire, future)
        waker.waker.arm(channel, token)  # fires at once if a message came since recv_nowait
        try:
            await future
        finally:
            del waker.waits[token]
            waker.waker.disarm(channel, token)
            if timer is not None:
                timer.cancel()
