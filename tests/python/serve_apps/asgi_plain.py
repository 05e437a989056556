"""Plain ASGI 3 applications for tests/python/test_serve_asgi.py: no framework, each behaviour by path."""

import asyncio
import collections.abc
import inspect
import json
import os

SEEN: dict = {}  # per worker interpreter


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                scope["state"]["worker_pid"] = os.getpid()
                scope["state"]["started"] = True
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                marker = os.environ.get("ASGI_SHUTDOWN_MARKER")
                if marker:
                    with open(marker, "a") as f:
                        f.write("shutdown\n")
                await send({"type": "lifespan.shutdown.complete"})
                return
    path = scope["path"][len(scope["root_path"]):]  # routed below the mount point
    if path.startswith("/scope"):
        out = {k: v for k, v in scope.items() if k not in ("headers", "raw_path", "query_string", "state")}
        out["headers"] = [[k.decode("latin-1"), v.decode("latin-1")] for k, v in scope["headers"]]
        out["raw_path"] = scope["raw_path"].decode("latin-1")
        out["query_string"] = scope["query_string"].decode("latin-1")
        out["state"] = dict(scope.get("state", {}))
        out["types"] = {"raw_path": type(scope["raw_path"]).__name__, "query_string": type(scope["query_string"]).__name__,
                        "header": type(scope["headers"][0][0]).__name__ if scope["headers"] else None}
        return await respond(send, 200, json.dumps(out).encode(), b"application/json")
    if path == "/pid":
        return await respond(send, 200, json.dumps({"pid": os.getpid()}).encode(), b"application/json")
    if path == "/crash":  # a C-level crash inside a request's task, as a ctypes mistake makes one
        import ctypes

        ctypes.string_at(0)
    if path == "/affinity":  # the CPUs the worker thread serving this request may run on
        return await respond(send, 200, json.dumps(sorted(os.sched_getaffinity(0))).encode(), b"application/json")
    if path == "/echo":
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        return await respond(send, 200, body, b"application/octet-stream")
    if path == "/pieces":
        # The more_body sequence as received: [[len, more_body], ...].
        pieces = []
        while True:
            message = await receive()
            assert message["type"] == "http.request", message
            pieces.append([len(message["body"]), message["more_body"]])
            if not message["more_body"]:
                break
        return await respond(send, 200, json.dumps(pieces).encode(), b"application/json")
    if path == "/upload":
        # Reads a large body piece by piece, holding none of it: reports its size, the pieces, a
        # checksum, and how much the process's resident memory grew meanwhile (the worker never
        # held the whole body, nor did the front end).
        import hashlib
        digest, total, count, biggest = hashlib.sha256(), 0, 0, 0
        start = peak = rss()
        while True:
            message = await receive()
            if message["type"] != "http.request":
                SEEN["upload?" + scope["query_string"].decode()] = [message["type"], total]
                return
            piece = message["body"]
            digest.update(piece)
            total += len(piece)
            count += 1
            biggest = max(biggest, len(piece))
            if count % 16 == 0:
                peak = max(peak, rss())
            if not message["more_body"]:
                break
        peak = max(peak, rss())
        out = {"total": total, "pieces": count, "biggest": biggest, "sha256": digest.hexdigest(), "grew": peak - start}
        return await respond(send, 200, json.dumps(out).encode(), b"application/json")
    if path == "/sleep":
        await asyncio.sleep(float(scope["query_string"] or b"0.5"))
        return await respond(send, 200, b"slept")
    if path == "/stream":
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
        n = int(scope["query_string"] or b"5")
        for i in range(n):
            await send({"type": "http.response.body", "body": b"part %d\n" % i, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})
        return
    if path == "/big":  # more than the stream window: send() must wait for the client, not block the loop
        await send({"type": "http.response.start", "status": 200, "headers": []})
        chunk = b"x" * (256 * 1024)
        for _ in range(int(scope["query_string"] or b"40")):
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
        return
    if path == "/raise-before":
        raise ValueError("broken before the response")
    if path == "/raise-after":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"partial", "more_body": True})
        raise ValueError("broken after the response began")
    if path == "/no-response":
        return
    if path == "/bad-message":
        await send({"type": "http.response.start", "status": "200"})
    if path == "/disconnect":
        # Waits for the client to go away; records that it saw http.disconnect.
        message = await receive()
        assert message["type"] == "http.request"
        message = await asyncio.wait_for(receive(), 30)
        SEEN["disconnect"] = message["type"]
        return
    if path == "/gather":
        # Answers once `n` requests wait here at once: met only if one worker runs them concurrently.
        n = int(scope["query_string"] or b"10")
        SEEN.setdefault("waiting", 0)
        event = SEEN.setdefault("event", asyncio.Event())
        SEEN["waiting"] += 1
        if SEEN["waiting"] >= n:
            event.set()
        try:
            await asyncio.wait_for(event.wait(), 60)
        except asyncio.TimeoutError:
            return await respond(send, 500, b"not concurrent")
        return await respond(send, 200, b"met")
    if path == "/awaitables":
        # receive and send are C awaitables (src/asgi/worker.cpp): what a coroutine allows, they allow.
        # Marked as coroutine functions (asgiref's async_to_sync warns about unmarked ones).
        out = {"marked": inspect.iscoroutinefunction(receive) and inspect.iscoroutinefunction(send)}
        try:
            receive("extra")
        except TypeError as e:
            out["bad call"] = str(e)
        step = receive()
        out["coroutine"] = isinstance(step, collections.abc.Coroutine)
        message = await asyncio.create_task(step)  # as Django Channels' await_many_dispatch does
        out["body"] = message["body"].decode()
        try:
            await step
        except RuntimeError:
            out["reawaited"] = "RuntimeError"
        send({"type": "http.response.start", "status": 500, "headers": []}).close()  # never awaited: not sent
        waiting = asyncio.create_task(receive())  # nothing comes until the response is complete: it waits
        await asyncio.sleep(0)
        waiting.cancel()
        try:
            await waiting
        except asyncio.CancelledError:
            out["cancelled"] = True
        later = asyncio.ensure_future(receive())  # woken when the response is complete
        body = json.dumps(out).encode()
        await asyncio.wait_for(send({"type": "http.response.start", "status": 200,
                                     "headers": [(b"content-length", str(len(body)).encode())]}), 30)
        await send({"type": "http.response.body", "body": body})
        SEEN["after-response"] = (await asyncio.wait_for(later, 30))["type"]
        return
    if path == "/after-response":
        return await respond(send, 200, SEEN.get("after-response", "").encode())
    if path == "/seen":
        return await respond(send, 200, json.dumps({k: v for k, v in SEEN.items() if k == "disconnect" or k.startswith("upload")}).encode())
    if path == "/pid":
        return await respond(send, 200, str(os.getpid()).encode() + b" " + str(id(SEEN)).encode())
    return await respond(send, 404, b"not found")


def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


async def respond(send, status, body, content_type=b"text/plain"):
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


async def no_lifespan(scope, receive, send):
    """Raises on the lifespan scope, as an application without lifespan support does: served anyway."""
    assert scope["type"] == "http", "no lifespan here"
    await respond(send, 200, b"no lifespan: " + str("state" in scope).encode())


async def failing_startup(scope, receive, send):
    if scope["type"] == "lifespan":
        await receive()
        await send({"type": "lifespan.startup.failed", "message": "the database is not there"})
        return
    await respond(send, 200, b"never")


async def raising_startup(scope, receive, send):
    if scope["type"] == "lifespan":
        await receive()
        raise RuntimeError("startup blew up")
    await respond(send, 200, b"never")
