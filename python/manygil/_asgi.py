"""The event loop of an ASGI worker (manygil/asgi.hpp), run in each worker interpreter by the C++
AsgiHandler through the package hook "asgi.serve". What is per request and hot (the scope, checking
``send()``'s messages, building the response, the inbox) is C++ (src/asgi/); this is the asyncio
side: one task per request or WebSocket connection, the lifespan protocol, the timeout (HTTP only), and
the wake-ups the I/O thread posts.

``is_asgi`` and ``probe`` (``--interface auto``) are in manygil._interface, which the server's main
interpreter and the supervisor import without asyncio.
"""

from __future__ import annotations

import asyncio
import inspect
import traceback

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = ["serve"]

# http::LogLevel's order, for Worker.log().
_INFO, _WARNING, _ERROR = 1, 2, 3

# When the handler stops, the front end has already closed every WebSocket (1001): their tasks get
# this long to take websocket.disconnect and return before what still runs is cancelled.
WEBSOCKET_FINISH_SECONDS = 5.0

# Worker.drain()'s third item when this loop is to retire (recycling: a successor serves instead).
_RETIRE = 2


def serve(worker: Any, app: Any, lifespan: str, timeout: float | None) -> None:
    """Runs this worker's loop until the handler stops it: lifespan startup (then ``worker.started``),
    the requests, lifespan shutdown."""
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        loop.run_until_complete(_main(worker, app, lifespan, timeout))
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.run_until_complete(loop.shutdown_default_executor())
    finally:
        asyncio.set_event_loop(None)
        loop.close()


async def _main(worker: Any, app: Any, mode: str, timeout: float | None) -> None:
    loop = asyncio.get_running_loop()
    state: dict[str, Any] = {}
    life = _Lifespan(app, state, mode, worker)
    failure = await life.startup()
    worker.started(failure)
    if failure is not None:
        await life.abandon()
        return
    scope_state = state if life.supported else None
    tasks: set[asyncio.Task[None]] = set()
    websockets: set[asyncio.Task[None]] = set()
    stopping = loop.create_future()

    server_stop = loop.create_future()  # the handler stops (also while retiring)

    def on_inbox() -> None:
        calls, woken, stop = worker.drain()
        for call in calls:
            # eager_start: the task runs at once, up to its first wait. A request whose body has come
            # and whose response fits the window never waits: it is done before Task() returns, with
            # no trip through the loop's ready queue.
            if call.is_websocket():  # --timeout does not apply: a WebSocket lives as long as it is used
                task = asyncio.Task(_websocket(app, call, scope_state), loop=loop, eager_start=True)
                if task.done():
                    continue
                websockets.add(task)
                task.add_done_callback(websockets.discard)
            else:
                task = asyncio.Task(_request(app, call, scope_state, timeout, loop), loop=loop, eager_start=True)
                if task.done():
                    continue
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        for call in woken:
            call.wake()
        if stop and not stopping.done():
            stopping.set_result(stop)
        if stop is True and not server_stop.done():
            server_stop.set_result(None)

    worker.bind(loop.create_future)  # for a receive() or send() that must wait
    loop.add_reader(worker.fileno(), on_inbox)
    try:
        on_inbox()  # requests that came while lifespan startup ran
        if await stopping == _RETIRE:
            await _retire(worker, tasks, websockets, server_stop, loop)
        elif websockets:  # the inbox still watched: their close events reach them
            await asyncio.wait(set(websockets), timeout=WEBSOCKET_FINISH_SECONDS)
    finally:
        loop.remove_reader(worker.fileno())
    # The front end has stopped (the requests in flight had their grace), or this loop retired: what
    # still runs is cancelled (an open WebSocket is closed 1001).
    for task in list(tasks):
        task.cancel()
    if tasks:
        await asyncio.gather(*tasks, return_exceptions=True)
    await life.shutdown()
    worker.bind(None)


async def _retire(worker: Any, tasks: set[asyncio.Task[None]], websockets: set[asyncio.Task[None]],
                  server_stop: asyncio.Future[None], loop: asyncio.AbstractEventLoop) -> None:
    """Recycling (AsgiOptions::max_requests): a successor takes the new requests; this loop lets what it
    has finish, for up to recycle_grace seconds (the handler stopping cuts that short), the inbox still
    watched (the last arrivals, the wake-ups of those in flight)."""
    deadline = loop.time() + worker.recycle_grace()
    while tasks and not server_stop.done():
        left = deadline - loop.time()
        if left <= 0:
            return
        await asyncio.wait({*tasks, server_stop}, timeout=left, return_when=asyncio.FIRST_COMPLETED)
    if server_stop.done() and websockets:  # as a stop does: the front end closed them 1001 already
        await asyncio.wait(set(websockets), timeout=WEBSOCKET_FINISH_SECONDS)


# The application's receive and send are C callables bound to the call (call.callables()), marked as
# coroutine functions: each returns an awaitable that answers at once when it can and otherwise waits
# on a future the inbox resolves (src/asgi/worker.cpp).


async def _request(app: Any, call: Any, state: dict[str, Any] | None, timeout: float | None,
                   loop: asyncio.AbstractEventLoop) -> None:
    expired = False
    timer = None
    if timeout is not None:
        task = asyncio.current_task()

        def expire() -> None:
            nonlocal expired
            expired = True
            task.cancel()  # type: ignore[union-attr]

        timer = loop.call_later(timeout, expire)
    try:
        await app(call.scope(state), *call.callables())
    except asyncio.CancelledError:
        if expired:
            call.fail(504, f"no response within {timeout:g} s: the request's task was cancelled")
        else:
            call.fail(503, "the server stopped before the response was complete")
            raise
    except Exception:
        call.fail(500, "the application raised an exception:\n" + traceback.format_exc().rstrip("\n"))
    else:
        call.finish()
    finally:
        if timer is not None:
            timer.cancel()
        call.wake()  # a receive() still waiting says http.disconnect


async def _websocket(app: Any, call: Any, state: dict[str, Any] | None) -> None:
    """One WebSocket connection (asgiref's websocket.* events; the checks and the connection's state
    are C++: HttpCall's WebSocket side)."""
    try:
        await app(call.scope(state), *call.callables())
    except asyncio.CancelledError:
        call.fail(503, "the server stopped while the WebSocket was open")
        raise
    except Exception:
        call.fail(403, "the application raised an exception:\n" + traceback.format_exc().rstrip("\n"))
    else:
        call.finish()
    finally:
        call.wake()


class _Lifespan:
    """asgiref's lifespan protocol for one worker. ``mode`` "auto": an application that raises before
    asking for its first event does not support lifespan and is served without it; "on": it must;
    "off": never run."""

    def __init__(self, app: Any, state: dict[str, Any], mode: str, worker: Any) -> None:
        self.app, self.state, self.mode, self.worker = app, state, mode, worker
        self.supported = mode != "off"
        self.asked = False  # the application called receive()
        self.events: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        loop = asyncio.get_running_loop()
        self.startup_done = loop.create_future()   # -> None, or the failure message
        self.shutdown_done = loop.create_future()
        self.task: asyncio.Task[None] | None = None
        self.error: str | None = None

    async def _run(self) -> None:
        scope = {"type": "lifespan", "asgi": {"version": "3.0", "spec_version": "2.0"}, "state": self.state}
        try:
            await self.app(scope, self._receive, self._send)
        except BaseException as e:
            if isinstance(e, asyncio.CancelledError):
                raise
            self.error = traceback.format_exc().rstrip("\n")

    async def _receive(self) -> dict[str, Any]:
        self.asked = True
        return await self.events.get()

    async def _send(self, message: dict[str, Any]) -> None:
        kind = message.get("type") if isinstance(message, dict) else None
        if kind in ("lifespan.startup.complete", "lifespan.startup.failed") and not self.startup_done.done():
            self.startup_done.set_result(None if kind.endswith("complete")
                                         else str(message.get("message") or "lifespan startup failed"))
        elif kind in ("lifespan.shutdown.complete", "lifespan.shutdown.failed") and not self.shutdown_done.done():
            self.shutdown_done.set_result(None if kind.endswith("complete")
                                          else str(message.get("message") or "lifespan shutdown failed"))
        else:
            raise RuntimeError(f"unexpected ASGI lifespan message {message!r}")

    async def startup(self) -> str | None:
        """None once started (or unsupported under "auto"), else why the worker cannot serve."""
        if self.mode == "off":
            return None
        self.task = asyncio.get_running_loop().create_task(self._run())
        self.events.put_nowait({"type": "lifespan.startup"})
        await asyncio.wait({self.startup_done, self.task}, return_when=asyncio.FIRST_COMPLETED)
        if self.startup_done.done():
            failure = self.startup_done.result()
            return None if failure is None else f"lifespan startup failed: {failure}"
        # The application returned or raised without answering the startup event.
        self.supported = False
        if self.error is not None and self.asked:
            return f"lifespan startup raised:\n{self.error}"
        if self.mode == "on":
            return "the application does not support the ASGI lifespan protocol" + (
                f":\n{self.error}" if self.error else "")
        self.worker.log(_INFO, "manygil serve: ASGI 'lifespan' protocol appears unsupported")
        return None

    async def shutdown(self) -> None:
        if not self.supported or self.task is None or self.task.done():
            return
        self.events.put_nowait({"type": "lifespan.shutdown"})
        await asyncio.wait({self.shutdown_done, self.task}, return_when=asyncio.FIRST_COMPLETED)
        if self.shutdown_done.done() and self.shutdown_done.result() is not None:
            self.worker.log(_ERROR, f"manygil serve: {self.shutdown_done.result()}")
        elif self.error is not None:
            self.worker.log(_ERROR, f"manygil serve: lifespan shutdown raised:\n{self.error}")
        if not self.task.done():
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)

    async def abandon(self) -> None:
        if self.task is not None and not self.task.done():
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)
