"""An ASGI 3 application for tests/cpp/asgi_test.cpp (a C++ host serving it with AsgiHandler). Lifespan
startup and shutdown, and each body piece, are reported to the host through its built-in module."""

import json

import _mg_asgi_host


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                _mg_asgi_host.note("startup")
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                _mg_asgi_host.note("shutdown")
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] == "websocket":  # an echo; the close code it heard is told to the host
        assert (await receive())["type"] == "websocket.connect"
        await send({"type": "websocket.accept"})
        try:
            while True:
                message = await receive()
                if message["type"] == "websocket.disconnect":
                    _mg_asgi_host.note(f"ws disconnect {message['code']}")
                    return
                await send({"type": "websocket.send", "text": message["text"]})
        finally:
            _mg_asgi_host.note("ws task ended")
    if scope["path"] == "/hello":
        body = f"hello from {scope['method']} {scope['path']}".encode()
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": body})
        return
    if scope["path"] == "/pieces":
        # The request body as it arrived: [[bytes, more_body], ...]; the host sends it in pauses.
        pieces = []
        while True:
            message = await receive()
            pieces.append([message["body"].decode(), message["more_body"]])
            _mg_asgi_host.note("piece " + message["body"].decode())
            if not message["more_body"]:
                break
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
        # Streamed back in two parts (chunked).
        await send({"type": "http.response.body", "body": json.dumps(pieces).encode(), "more_body": True})
        await send({"type": "http.response.body", "body": b"\n"})
        return
    await send({"type": "http.response.start", "status": 404, "headers": []})
    await send({"type": "http.response.body", "body": b"not here"})
