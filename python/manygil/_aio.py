"""asyncio waits on manygil's shared objects with neither a thread nor a poll: Channel.recv_async
and Channel.send_async.

Each running loop gets one _ChannelWaker (an eventfd the loop watches with add_reader). A receive
that finds its channel empty arms the channel with the waker and a token of its own; the channel's
next send or close (from any thread or interpreter) marks the token ready and makes the eventfd
readable; the loop then wakes exactly the waits whose tokens are ready, and each tries its channel
again. A send that finds a bounded channel full does the same with a watch for room, which the
channel's next receive or close fires. A message is only ever taken by recv_nowait and put by
send_nowait, both while the coroutine runs, so a wait that is cancelled or times out takes nothing
(another receiver gets the message instead) and puts nothing (no half-sent object, no watch left).
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


def _checked_timeout(timeout: float | None) -> float | None:
    if timeout is not None:
        timeout = float(timeout)
        if not timeout >= 0:
            raise ValueError(f"timeout must be >= 0 or None, not {timeout!r}")
    return timeout


async def _wait(waker: _LoopWaker, channel: _core.Channel, deadline: float | None, room: bool) -> None:
    """Until the channel may have a message (room: room), its close, the deadline, or a cancel; the
    watch is dropped on every way out, so none stays armed."""
    loop = asyncio.get_running_loop()
    token = next(waker.tokens)
    future = loop.create_future()
    waker.waits[token] = future
    timer = None if deadline is None else loop.call_at(deadline, _expire, future)
    waker.waker.arm(channel, token, room)  # fires at once if the state changed since the try
    try:
        await future
    finally:
        del waker.waits[token]
        waker.waker.disarm(channel, token, room)
        if timer is not None:
            timer.cancel()


async def channel_recv(channel: _core.Channel, timeout: float | None = None) -> object:
    """Channel.recv_async (the C type calls this through the package's hooks): see its docstring."""
    timeout = _checked_timeout(timeout)
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
        await _wait(waker, channel, deadline, room=False)


async def channel_send(channel: _core.Channel, obj: object, timeout: float | None = None) -> None:
    """Channel.send_async (the C type calls this through the package's hooks): see its docstring."""
    timeout = _checked_timeout(timeout)
    if channel.maxsize == 0:
        channel.send_nowait(obj)  # never full: ChannelClosed or a conversion error at most
        return
    loop = asyncio.get_running_loop()
    deadline = None if timeout is None else loop.time() + timeout
    waker = _loop_waker(loop)
    while True:
        try:
            channel.send_nowait(obj)  # ChannelClosed (also after a wait: close fires it) goes to the caller
            return
        except _core.ChannelFull:
            pass
        if deadline is not None and loop.time() >= deadline:
            raise _core.ChannelFull(f"no room within {timeout} s")
        await _wait(waker, channel, deadline, room=True)
