"""An ASGI application for the operational tests (tests/python/test_serve_asgi_ops.py): recycling, a
stuck loop, clients that leave early.
Each worker interpreter imports it afresh, so TOKEN names the interpreter; lifespan startup and
shutdown append "startup TOKEN" / "shutdown TOKEN" to the file named by ASGI_RECYCLE_MARKER. With
ASGI_FAIL_EVERY_SECOND naming a file, every second lifespan startup of the process fails (the 2nd, the
4th, ...: a successor that cannot start), each attempt appending "ok TOKEN" or "failed TOKEN" to it.
With ASGI_BLOCK_MARKER, /block appends "blocking TOKEN" to that file just before it blocks."""

import asyncio
import os
import time

TOKEN = os.urandom(6).hex()
SERVED = 0  # requests this interpreter has answered
SEEN: dict = {}  # what the early-leaving clients' tasks saw, by path (GET /seen returns it)


def _mark(what: str) -> None:
    marker = os.environ.get("ASGI_RECYCLE_MARKER")
    if marker:
        with open(marker, "a") as f:
            f.write(f"{what} {TOKEN}\n")


async def _body(send, status: int, body: bytes) -> None:
    await send({"type": "http.response.start", "status": status, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": body})


async def app(scope, receive, send):
    global SERVED
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                attempts = os.environ.get("ASGI_FAIL_EVERY_SECOND")
                if attempts:
                    with open(attempts, "a+") as f:  # startups are one at a time here (one worker)
                        f.seek(0)
                        failing = len(f.read().splitlines()) % 2 == 1
                        f.write(f"{'failed' if failing else 'ok'} {TOKEN}\n")
                    if failing:
                        await send({"type": "lifespan.startup.failed", "message": f"refused start {TOKEN}"})
                        return
                _mark("startup")
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                _mark("shutdown")
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] == "websocket" and scope["path"] == "/ws-leaves":
        # The client leaves before this accepts: the next receive() says so; an accept after it is
        # harmless, and a send then raises (an OSError, asgiref's spec 2.4).
        assert (await receive())["type"] == "websocket.connect"
        message = await receive()
        seen = SEEN["/ws-leaves"] = {"received": message["type"], "code": message.get("code")}
        await send({"type": "websocket.accept"})
        seen["accepted"] = True
        try:
            await send({"type": "websocket.send", "text": "anyone?"})
            seen["send"] = "sent"
        except OSError as e:
            seen["send"] = type(e).__name__
        return
    if scope["type"] == "websocket":
        message = await receive()
        assert message["type"] == "websocket.connect"
        await send({"type": "websocket.accept"})
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                return
            await send({"type": "websocket.send", "text": f"{TOKEN} {message.get('text')}"})
    path = scope["path"]
    if path == "/seen":
        import json
        return await _body(send, 200, json.dumps(SEEN).encode())
    if path == "/http-leaves":  # waits for the client to go: http.disconnect
        first = await receive()
        SEEN["/http-leaves"] = {"first": first["type"]}
        SEEN["/http-leaves"]["then"] = (await receive())["type"]
        return
    if path == "/block":  # blocks the whole loop in C code (time.sleep): only an interrupt or a new worker helps
        blocking = os.environ.get("ASGI_BLOCK_MARKER")
        if blocking:
            with open(blocking, "a") as f:
                f.write(f"blocking {TOKEN}\n")
        time.sleep(float(scope["query_string"] or b"60"))
        return await _body(send, 200, b"woke")
    if path == "/spin":  # Python that never awaits: only an interrupt ends it
        while True:
            pass
    if path == "/slow":
        await asyncio.sleep(float(scope["query_string"] or b"0.2"))
    SERVED += 1
    await _body(send, 200, f"{TOKEN} {SERVED}".encode())
