"""WebSockets in the C++ front end (src/http/websocket*.cpp), driven by a real client: the `websockets`
library (asyncio) against tests/cpp/websocket_echo_server.cpp, a test-only C++ executable built with
the C++ tests (a manygil::http::Server with a C++ echo handler, no Python). It is an executable rather
than a binding in ext/: the Python side of WebSockets is ASGI's (src/asgi, python/manygil), built on
the same C++ API; this test pins the front end alone: handshake, framing, fragmentation, ping, close
codes, size limits and wss:// with the certificate the TLS tests make."""

from __future__ import annotations

import asyncio
import os
import shutil
import ssl
import subprocess
from pathlib import Path

import pytest

websockets = pytest.importorskip("websockets", reason="the websockets client is in requirements-dev.txt")
from websockets.asyncio.client import connect  # noqa: E402
from websockets.exceptions import ConnectionClosedError, InvalidStatus  # noqa: E402

from test_serve_tls import make_key_and_cert  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
SERVER = Path(os.environ.get("MANYGIL_WEBSOCKET_ECHO_SERVER", ROOT / "build" / "tests" / "cpp" / "websocket_echo_server"))
# Without the sanitizer runtimes `make sanitize` preloads into Python (the server is not instrumented).
TOOL_ENV = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}


class EchoServer:
    def __init__(self, *args: str):
        if not SERVER.exists():
            pytest.fail(f"{SERVER} is not built: `make build-cpp` builds it with the C++ tests")
        self.proc = subprocess.Popen([str(SERVER), *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, env=TOOL_ENV, text=True)
        line = self.proc.stdout.readline()
        assert line.startswith("listening "), (line, self.proc.stderr.read() if self.proc.poll() is not None else "")
        self.address = line.split()[1]

    def stop(self) -> str:
        """Closes its stdin (a graceful stop); returns what it wrote to stderr (its on_close lines)."""
        self.proc.stdin.close()
        try:
            _, err = self.proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise
        assert self.proc.returncode == 0, err
        return err


@pytest.fixture(scope="module")
def server():
    s = EchoServer()
    yield s
    s.stop()


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 60))


def test_text_binary_and_a_subprotocol(server):
    async def go():
        async with connect(f"ws://{server.address}/", subprotocols=["chat", "superchat"]) as ws:
            assert ws.subprotocol == "chat"
            await ws.send("héllo")
            assert await ws.recv() == "héllo"
            await ws.send(b"\x00\xff\x01")
            assert await ws.recv() == b"\x00\xff\x01"
            await ws.send("")
            assert await ws.recv() == ""
    run(go())


def test_one_mebibyte_messages_both_ways(server):
    async def go():
        async with connect(f"ws://{server.address}/", max_size=None) as ws:
            text = "x" * (1 << 20)
            blob = os.urandom(1 << 20)
            await ws.send(text)
            assert await ws.recv() == text
            await ws.send(blob)
            assert await ws.recv() == blob
    run(go())


def test_fragmented_sends_arrive_whole(server):
    async def go():
        async with connect(f"ws://{server.address}/", max_size=None) as ws:
            await ws.send(["one ", "two ", "three"])  # three frames, one message
            assert await ws.recv() == "one two three"

            async def pieces():
                for i in range(50):
                    yield bytes([i]) * 1000
            await ws.send(pieces())
            assert await ws.recv() == b"".join(bytes([i]) * 1000 for i in range(50))
    run(go())


def test_ping_is_answered_by_the_front_end(server):
    async def go():
        async with connect(f"ws://{server.address}/") as ws:
            for _ in range(3):
                pong = await ws.ping(b"are you there")
                await asyncio.wait_for(pong, 10)
            await ws.send("after pings")
            assert await ws.recv() == "after pings"
    run(go())


def test_close_codes_both_ways(server):
    async def go():
        async with connect(f"ws://{server.address}/") as ws:
            await ws.close(4000, "client leaves")
        assert ws.close_code == 4000
        assert ws.close_reason == "client leaves"

        async with connect(f"ws://{server.address}/") as ws:
            await ws.send("close 4001 server leaves")
            with pytest.raises(ConnectionClosedError) as info:
                await ws.recv()
        assert info.value.rcvd.code == 4001
        assert info.value.rcvd.reason == "server leaves"

        async with connect(f"ws://{server.address}/") as ws:
            await ws.send("close 1000")
            with pytest.raises(websockets.exceptions.ConnectionClosedOK):
                await ws.recv()
        assert ws.close_code == 1000
    run(go())


def test_a_denied_upgrade_is_an_http_answer(server):
    async def go():
        with pytest.raises(InvalidStatus) as info:
            async with connect(f"ws://{server.address}/deny"):
                pass
        assert info.value.response.status_code == 403
    run(go())


def test_many_clients_at_once(server):
    async def one(i: int):
        async with connect(f"ws://{server.address}/") as ws:
            for j in range(20):
                await ws.send(f"{i}:{j}")
                assert await ws.recv() == f"{i}:{j}"

    async def go():
        await asyncio.gather(*(one(i) for i in range(32)))
    run(go())


def test_a_message_over_the_limit_is_closed_1009_and_stop_closes_1001():
    s = EchoServer("--max-message", "1000")
    try:
        async def go():
            async with connect(f"ws://{s.address}/") as ws:
                await ws.send("y" * 1000)
                assert await ws.recv() == "y" * 1000
                await ws.send("y" * 1001)
                with pytest.raises(ConnectionClosedError) as info:
                    await ws.recv()
            assert info.value.sent is None or info.value.rcvd.code == 1009
            assert info.value.rcvd.code == 1009

            # Server::stop sends 1001 to an open connection and awaits the client's close.
            ws = await connect(f"ws://{s.address}/")
            await ws.send("hello")
            assert await ws.recv() == "hello"
            loop = asyncio.get_running_loop()
            stopping = loop.run_in_executor(None, s.stop)
            with pytest.raises(websockets.exceptions.ConnectionClosed) as info:
                await ws.recv()
            assert info.value.rcvd.code == 1001
            return await stopping
        err = run(go())
        assert "on_close 1009" in err
        assert "on_close 1001" in err
    finally:
        if s.proc.poll() is None:
            s.proc.kill()
            s.proc.wait()


@pytest.mark.skipif(shutil.which("openssl") is None, reason="the openssl command makes the test certificate")
def test_wss_with_the_test_certificate(tmp_path):
    key, cert = make_key_and_cert(tmp_path, "server")
    s = EchoServer("--certfile", str(cert), "--keyfile", str(key))
    try:
        ctx = ssl.create_default_context(cafile=str(cert))

        async def go():
            port = s.address.rsplit(":", 1)[1]
            async with connect(f"wss://localhost:{port}/", ssl=ctx, max_size=None) as ws:
                await ws.send("over TLS")
                assert await ws.recv() == "over TLS"
                blob = os.urandom(1 << 20)
                await ws.send(blob)
                assert await ws.recv() == blob
                await ws.send(["frag", "mented"])
                assert await ws.recv() == "fragmented"
                await asyncio.wait_for(await ws.ping(), 10)
                await ws.close(4002)
            assert ws.close_code == 4002
        run(go())
    finally:
        s.stop()
