"""A Starlette application with WebSocket routes: an echo, and a broadcast to every client connected
to this worker (a plain Python set: each worker is its own interpreter, so the test runs one worker)."""

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


app = Starlette(routes=[WebSocketRoute("/echo", echo), WebSocketRoute("/room", room)])
