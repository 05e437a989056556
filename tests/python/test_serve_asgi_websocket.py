"""ASGI WebSockets (asgiref's websocket.* events) through `manygil serve`, driven by the `websockets`
client: a plain ASGI application and Starlette WebSocket routes. No times asserted: a test waits for
an event (with a generous bound) rather than for a duration."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import ssl
from pathlib import Path

import pytest

import manygil

websockets = pytest.importorskip("websockets", reason="the websockets client is in requirements-dev.txt")
from websockets.asyncio.client import connect  # noqa: E402
from websockets.exceptions import ConnectionClosed, ConnectionClosedError, InvalidStatus  # noqa: E402

from served import Served  # noqa: E402


def run(coro, limit: float = 120):
    return asyncio.run(asyncio.wait_for(coro, limit))


@pytest.fixture(scope="module")
def plain():
    # One worker: the backpressure test needs its connections on the same event loop.
    with Served("serve_apps.asgi_websocket:app", "--workers", "1") as served:
        yield served


def url(served: Served, path: str) -> str:
    return f"ws://{served.host}:{served.port}{path}"


async def wait_for_file(path: Path, limit: float = 60) -> str:
    for _ in range(int(limit / 0.05)):
        if path.exists() and path.read_text().endswith("\n"):
            return path.read_text()
        await asyncio.sleep(0.05)
    raise AssertionError(f"{path} was not written")


def test_echo_text_and_bytes_and_the_scope(plain):
    async def go():
        async with connect(url(plain, "/echo?x=1"), additional_headers={"X-Custom": "Yes"}, max_size=None) as ws:
            assert ws.response.headers["x-served-by"] == "manygil-test"
            assert ws.subprotocol is None
            await ws.send("héllo")
            assert await ws.recv() == "héllo"
            await ws.send(b"\x00\xff\x01")
            assert await ws.recv() == b"\x00\xff\x01"
            blob = os.urandom(3 << 20)  # over the 1 MiB windows both ways
            await ws.send(blob)
            assert await ws.recv() == blob
            await ws.send("scope")
            scope = json.loads(await ws.recv())
        assert scope["type"] == "websocket"
        assert scope["asgi"] == {"version": "3.0", "spec_version": "2.4"}
        assert scope["scheme"] == "ws" and "method" not in scope
        assert scope["path"] == "/echo" and scope["raw_path"] == "/echo" and scope["query_string"] == "x=1"
        assert scope["root_path"] == "" and scope["subprotocols"] == []
        assert ["x-custom", "Yes"] in scope["headers"] and ["upgrade", "websocket"] in scope["headers"]
        assert scope["server"] == [plain.host, plain.port] and scope["client"][0] == "127.0.0.1"
        assert isinstance(scope["state"]["pid"], int)  # the lifespan state, shallow-copied
        assert scope["extensions"] == {"websocket.http.response": {}}
    run(go())


@pytest.mark.skipif(shutil.which("openssl") is None, reason="the openssl command makes the test certificate")
def test_wss_scope_scheme_and_root_path(tmp_path):
    from test_serve_tls import make_key_and_cert

    key, cert = make_key_and_cert(tmp_path, "server")
    with manygil.Server("serve_apps.asgi_websocket:app", workers=1, bind="127.0.0.1:0", certfile=str(cert),
                        keyfile=str(key), root_path="/api") as server:
        port = server.addresses[0].rsplit(":", 1)[1]
        ctx = ssl.create_default_context(cafile=str(cert))

        async def go():
            async with connect(f"wss://localhost:{port}/echo", ssl=ctx) as ws:  # a proxy stripped /api
                await ws.send("scope")
                return json.loads(await ws.recv())
        scope = run(go())
    assert scope["scheme"] == "wss"
    assert scope["root_path"] == "/api" and scope["path"] == "/api/echo"


def test_subprotocol_negotiation(plain):
    async def go():
        async with connect(url(plain, "/echo"), subprotocols=["chat", "superchat"]) as ws:
            assert ws.subprotocol == "superchat"
            await ws.send("scope")
            assert json.loads(await ws.recv())["subprotocols"] == ["chat", "superchat"]
        async with connect(url(plain, "/echo"), subprotocols=["chat"]) as ws:
            assert ws.subprotocol == "chat"
    run(go())


@pytest.mark.parametrize("path, status", [("/deny", 403), ("/raise-before", 403), ("/return-before", 403),
                                          ("/raise-mid-denial", 500)])
def test_refused_before_accept_is_an_http_answer(plain, path, status):
    async def go():
        with pytest.raises(InvalidStatus) as info:
            async with connect(url(plain, path)):
                pass
        assert info.value.response.status_code == status
    run(go())


def test_denial_response_extension(plain):
    async def go():
        with pytest.raises(InvalidStatus) as info:
            async with connect(url(plain, "/deny-response")):
                pass
        r = info.value.response
        assert r.status_code == 418 and r.headers["x-why"] == "teapot" and r.body == b"not here"
    run(go())


def test_timeout_does_not_apply_once_accepted():
    with manygil.Server("serve_apps.asgi_websocket:app", workers=1, bind="127.0.0.1:0", timeout=0.2) as server:
        host, port = server.addresses[0].rsplit(":", 1)

        async def go():
            async with connect(f"ws://{host}:{port}/echo") as ws:
                await asyncio.sleep(1.0)  # idle for five timeouts: still open
                await ws.send("still here")
                assert await ws.recv() == "still here"
            # Until it is accepted, an upgrade is a request like any other: the front end answers 504
            # half a second past the timeout.
            with pytest.raises(InvalidStatus) as info:
                async with connect(f"ws://{host}:{port}/slow-accept?s=1.5"):
                    pass
            assert info.value.response.status_code == 504
            await asyncio.sleep(2.0)  # the late accept() finds the connection gone; the worker goes on
            async with connect(f"ws://{host}:{port}/echo") as ws:
                await ws.send("after")
                assert await ws.recv() == "after"
        run(go())


def test_exception_after_accept_closes_1011_and_returning_closes_1000(plain):
    async def go():
        async with connect(url(plain, "/raise-after")) as ws:
            await ws.send("boom")
            with pytest.raises(ConnectionClosedError) as info:
                await ws.recv()
        assert info.value.rcvd.code == 1011
        async with connect(url(plain, "/return-after")) as ws:
            await ws.send("bye")
            with pytest.raises(websockets.exceptions.ConnectionClosedOK):
                await ws.recv()
        assert ws.close_code == 1000
    run(go())
    plain.wait_for_log("RuntimeError: broken after accept")  # relayed after the close the client saw


def test_close_codes_both_ways(plain, tmp_path):
    seen = tmp_path / "seen"

    async def go():
        async with connect(url(plain, f"/echo?f={seen}")) as ws:
            await ws.close(4000, "client leaves")
        assert (await wait_for_file(seen)) == "4000 client leaves\n"
        async with connect(url(plain, "/echo")) as ws:
            await ws.send("close 4001 server leaves")
            with pytest.raises(ConnectionClosedError) as info:
                await ws.recv()
        assert info.value.rcvd.code == 4001 and info.value.rcvd.reason == "server leaves"
    run(go())


def test_a_slow_consumer_does_not_stall_the_worker(plain):
    async def go():
        async with connect(url(plain, "/slow"), max_size=None) as slow:
            # The application reads nothing yet: past the 1 MiB receive window the front end stops
            # reading this socket and these sends back up in the kernel's buffers.
            chunk = b"y" * (1 << 20)
            feeding = asyncio.ensure_future(asyncio.gather(*(slow.send(chunk) for _ in range(24))))
            # Meanwhile the same worker's loop serves another connection.
            async with connect(url(plain, "/echo")) as other:
                for i in range(20):
                    await other.send(f"ping {i}")
                    assert await other.recv() == f"ping {i}"
            async with connect(url(plain, "/release")) as release:
                assert await release.recv() == "released"
            await feeding
            await slow.send("total?")
            assert await slow.recv() == str(24 << 20)
    run(go())


def test_send_backpressure_waits_without_blocking_the_loop(plain, tmp_path):
    sent = tmp_path / "sent"

    async def go():
        async with connect(url(plain, f"/flood?f={sent}"), max_size=None, max_queue=1) as flood:
            # This client reads nothing for now: past the 1 MiB send window (and the kernel's
            # buffers) the application's `await send()` waits, while the loop serves others.
            await wait_for_file(sent)
            async with connect(url(plain, "/echo")) as other:
                for i in range(20):
                    await other.send(f"ping {i}")
                    assert await other.recv() == f"ping {i}"
            # Without backpressure all 32 MiB would have been queued at once.
            assert len(sent.read_text().splitlines()) < 32
            for i in range(32):
                assert await flood.recv() == bytes([i]) * (1 << 20)
            assert await flood.recv() == "flooded"
    run(go())


def test_starlette_echo_and_broadcast():
    # One worker: the room is a Python set in the worker's interpreter (each worker is its own).
    with Served("serve_apps.starlette_ws_app:app", "--workers", "1") as served:
        async def go():
            async with connect(url(served, "/echo")) as ws:
                await ws.send("hi")
                assert await ws.recv() == "echo: hi"
            a = await connect(url(served, "/room"))
            assert await a.recv() == "joined 1"
            b = await connect(url(served, "/room"))
            assert await b.recv() == "joined 2"
            await a.send("hello all")
            assert await a.recv() == "hello all" and await b.recv() == "hello all"
            await b.close()
            await a.send("only a")
            assert await a.recv() == "only a"
            await a.close()
        run(go())


def test_starlette_broadcast_across_workers_through_a_shared_dict():
    # Two workers: the second connection goes to the other (least loaded) worker, whose interpreter
    # shares nothing with the first's but the SharedDict.
    with Served("serve_apps.starlette_ws_app:app", "--workers", "2") as served:
        async def go():
            a = await connect(url(served, "/shared-room"))
            where_a = await a.recv()
            b = await connect(url(served, "/shared-room"))
            where_b = await b.recv()
            assert where_a != where_b  # one connection per worker
            await a.send("from a")
            assert await a.recv() == "from a" and await b.recv() == "from a"
            await b.send("from b")
            assert await a.recv() == "from b" and await b.recv() == "from b"
            await a.close()
            await b.close()
        run(go())


def test_sigterm_closes_1001_and_the_application_sees_it(tmp_path):
    seen = tmp_path / "seen"
    served = Served("serve_apps.asgi_websocket:app", "--workers", "2")
    try:
        async def go():
            async with connect(url(served, f"/echo?f={seen}&linger=1")) as ws:
                await ws.send("up")
                assert await ws.recv() == "up"
                served.proc.send_signal(signal.SIGTERM)
                with pytest.raises(ConnectionClosed) as info:
                    await ws.recv()
            assert info.value.rcvd is not None and info.value.rcvd.code == 1001
        run(go())
        assert served.stop() == 0
        # The application saw websocket.disconnect 1001, and its task finished before the worker stopped.
        lines = seen.read_text().splitlines()
        assert lines[0].startswith("1001") and lines[1:] == ["finished"]
    finally:
        served.stop()
