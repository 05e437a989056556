"""Plain ASGI WebSocket applications for tests/python/test_serve_asgi_websocket.py: no framework, each
behaviour by path. What must be seen from outside the worker is written to the file named by the
query string's `f` (the worker is a sub-interpreter of the serving process)."""

import asyncio
import json
import os
from urllib.parse import parse_qs

RELEASE: asyncio.Event | None = None  # per worker: lets /slow start reading


def _note(scope, text):
    path = parse_qs(scope["query_string"].decode()).get("f", [None])[0]
    if path:
        with open(path, "a") as f:
            f.write(text + "\n")


async def app(scope, receive, send):
    global RELEASE
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                scope["state"]["pid"] = os.getpid()
                await send({"type": "lifespan.startup.complete"})
            else:
                await send({"type": "lifespan.shutdown.complete"})
                return
    assert scope["type"] == "websocket", scope["type"]
    if RELEASE is None:
        RELEASE = asyncio.Event()
    path = scope["path"][len(scope["root_path"]):]  # routed below the mount point
    first = await receive()
    assert first["type"] == "websocket.connect", first
    if path == "/deny":
        await send({"type": "websocket.close"})
        return
    if path == "/deny-response":
        await send({"type": "websocket.http.response.start", "status": 418, "headers": [(b"x-why", b"teapot")]})
        await send({"type": "websocket.http.response.body", "body": b"not ", "more_body": True})
        await send({"type": "websocket.http.response.body", "body": b"here"})
        return
    if path == "/raise-before":
        raise ValueError("refused by raising")
    if path == "/return-before":
        return
    if path == "/raise-mid-denial":
        await send({"type": "websocket.http.response.start", "status": 418, "headers": []})
        raise ValueError("broken amid the denial response")
    if path == "/slow-accept":
        await asyncio.sleep(float(parse_qs(scope["query_string"].decode())["s"][0]))
    offered = scope["subprotocols"]
    chosen = "superchat" if "superchat" in offered else (offered[0] if offered else None)
    await send({"type": "websocket.accept", "subprotocol": chosen, "headers": [(b"x-served-by", b"manygil-test")]})
    if path == "/echo":
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                _note(scope, f"{message['code']} {message.get('reason', '')}")
                if parse_qs(scope["query_string"].decode()).get("linger"):
                    await asyncio.sleep(0.3)  # cleanup that takes a while: not cut short by a graceful stop
                    _note(scope, "finished")
                return
            text = message.get("text")
            if text == "scope":
                out = {k: v for k, v in scope.items() if k not in ("headers", "raw_path", "query_string", "state")}
                out["headers"] = [[k.decode("latin-1"), v.decode("latin-1")] for k, v in scope["headers"]]
                out["raw_path"] = scope["raw_path"].decode("latin-1")
                out["query_string"] = scope["query_string"].decode("latin-1")
                out["state"] = dict(scope.get("state", {}))
                await send({"type": "websocket.send", "text": json.dumps(out)})
            elif text is not None and text.startswith("close "):
                _, code, *reason = text.split(" ", 2)
                await send({"type": "websocket.close", "code": int(code), "reason": reason[0] if reason else ""})
            elif text is not None:
                await send({"type": "websocket.send", "text": text})
            else:
                await send({"type": "websocket.send", "bytes": message["bytes"]})
    elif path == "/raise-after":
        await receive()
        raise RuntimeError("broken after accept")
    elif path == "/return-after":
        await receive()
        return
    elif path == "/release":
        RELEASE.set()
        await send({"type": "websocket.send", "text": "released"})
        await send({"type": "websocket.close"})
    elif path == "/slow":
        # Reads nothing until /release: the client's sends back up (receive backpressure).
        await RELEASE.wait()
        total = 0
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                return
            if message.get("text") == "total?":
                await send({"type": "websocket.send", "text": str(total)})
            else:
                total += len(message.get("bytes") or b"")
    elif path == "/flood":
        # Sends far more than the send window to a client that does not read yet: send() waits.
        for i in range(32):
            await send({"type": "websocket.send", "bytes": bytes([i]) * (1 << 20)})
            _note(scope, f"sent {i}")
        await send({"type": "websocket.send", "text": "flooded"})
        await receive()
