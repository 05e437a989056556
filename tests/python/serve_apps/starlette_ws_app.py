"""A Starlette application with WebSocket routes: an echo; /room, a broadcast to every client connected
to this worker (a plain Python set: each worker is its own interpreter); /shared-room, a broadcast to
every client of every worker through a manygil.SharedDict (a numbered message log each connection
polls: SharedDict has no async wait)."""

import asyncio
import threading

from manygil import SharedDict
from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

CLIENTS: set = set()


async def echo(ws: WebSocket):
    await ws.accept()
    try:
        while True:
            await ws.send_text("echo: " + await ws.receive_text())
    except WebSocketDisconnect:
        pass


async def room(ws: WebSocket):
    await ws.accept()
    CLIENTS.add(ws)
    try:
        await ws.send_text(f"joined {len(CLIENTS)}")
        while True:
            text = await ws.receive_text()
            for client in list(CLIENTS):
                await client.send_text(text)
    except WebSocketDisconnect:
        pass
    finally:
        CLIENTS.discard(ws)


async def shared_room(ws: WebSocket):
    log = SharedDict.named("starlette_ws_app.shared_room")  # the same dict in every worker interpreter
    await ws.accept()
    seen = log.get("n", 0)
    await ws.send_text(f"joined on thread {threading.get_native_id()}")

    async def forward():
        nonlocal seen
        while True:
            while (text := log.get(seen + 1)) is not None:  # a number is taken before its message is set
                seen += 1
                await ws.send_text(text)
            await asyncio.sleep(0.01)

    forwarding = asyncio.create_task(forward())
    try:
        while True:
            text = await ws.receive_text()
            log[log.incr("next", 1, initial=0)] = text
            log.incr("n", 1, initial=0)
    except WebSocketDisconnect:
        pass
    finally:
        forwarding.cancel()


app = Starlette(routes=[WebSocketRoute("/echo", echo), WebSocketRoute("/room", room),
                        WebSocketRoute("/shared-room", shared_room)])
