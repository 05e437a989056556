"""manygil serve under ASGI, operations: --max-requests recycling a worker's event loop (a new
interpreter, lifespan shutdown and startup, no request lost), clients that leave before the
application answered, and a loop stuck in C code replaced. Real clients (http.client, raw sockets,
the `websockets` library) and the `manygil serve` CLI; no times asserted."""

from __future__ import annotations

import asyncio
import http.client
import json
import socket
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

import manygil

from served import Served, address

APPS = Path(__file__).parent
if str(APPS) not in sys.path:
    sys.path.insert(0, str(APPS))  # serve_apps, importable by the workers too (they copy sys.path)

APP = "serve_apps.asgi_ops:app"


def get(host: str, port: int, path: str, timeout: float = 30) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request("GET", path)
        r = conn.getresponse()
        return r.status, r.read()
    finally:
        conn.close()


def marks(path: Path) -> tuple[Counter, Counter]:
    """The lifespan marker file: how many startups and shutdowns each interpreter (token) ran."""
    startups, shutdowns = Counter(), Counter()
    for line in path.read_text().splitlines() if path.exists() else []:
        what, token = line.split()
        (startups if what == "startup" else shutdowns)[token] += 1
    return startups, shutdowns


def wait_until(predicate, limit: float = 60.0) -> bool:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def until_handed_over(host: str, port: int, old_token: str) -> str:
    """Requests (beyond a loop's share) until one is answered by another interpreter than
    `old_token`'s: a successor has taken over. Returns its token."""
    for _ in range(600):
        status, body = get(host, port, "/slow?0.01")
        assert status == 200
        token = body.decode().split()[0]
        if token != old_token:
            return token
    raise AssertionError("no new interpreter took over")


def hammer(host: str, port: int, n: int = 200, threads: int = 4, path: str = "/") -> list[tuple[int, bytes]]:
    """n GETs from `threads` threads, each on its own keep-alive connection (reconnecting if the server
    closes it), as a load generator would."""
    per = n // threads

    def run(_: int) -> list[tuple[int, bytes]]:
        out = []
        conn = http.client.HTTPConnection(host, port, timeout=60)
        try:
            for _ in range(per):
                try:
                    conn.request("GET", path)
                    r = conn.getresponse()
                    out.append((r.status, r.read()))
                except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                    conn.close()  # a keep-alive connection closed between requests: a client retries
                    conn = http.client.HTTPConnection(host, port, timeout=60)
                    conn.request("GET", path)
                    r = conn.getresponse()
                    out.append((r.status, r.read()))
        finally:
            conn.close()
        return out

    with ThreadPoolExecutor(threads) as ex:
        return [x for part in ex.map(run, range(threads)) for x in part]


# ---- --max-requests ----------------------------------------------------------------------------------


def test_max_requests_recycles_loops_without_losing_a_request(tmp_path, monkeypatch):
    marker = tmp_path / "lifespan"
    monkeypatch.setenv("ASGI_RECYCLE_MARKER", str(marker))  # the workers' os.environ follows the process's
    with manygil.Server(APP, workers=2, bind="127.0.0.1:0", interface="asgi", max_requests=20) as server:
        host, port = address(server)
        # Each request awaits 20 ms, so that the 200 take long enough for new interpreters to start
        # (~0.1-0.3 s each here) while the old loops serve on.
        replies = hammer(host, port, 200, 4, "/slow?0.02")
        assert [s for s, _ in replies] == [200] * 200
        # Each reply names the interpreter that answered and how many it had answered by then.
        served_by = Counter()
        for _, body in replies:
            token, count = body.decode().split()
            served_by[token] = max(served_by[token], int(count))
        # 200 requests, a share of 20 per interpreter: up to 10 interpreters (a loop serves on while
        # its successor starts, so it may take more than its share).
        assert len(served_by) >= 4, served_by
        # All but the two serving now were recycled, each after at least its share.
        assert sum(1 for n in served_by.values() if n < 20) <= 2, served_by
        assert server.stats()["pool"]["recycled"] >= len(served_by) - 2
        # Every interpreter that answered ran lifespan startup, and the recycled ones shutdown too.
        assert set(served_by) <= set(marks(marker)[0])
        assert wait_until(lambda: sum(marks(marker)[1].values()) >= len(served_by) - 2)
    startups, shutdowns = marks(marker)
    assert startups == shutdowns  # after stop: every interpreter's startup has its shutdown
    assert set(startups.values()) == {1}, marker.read_text()


def test_max_requests_with_the_cli_and_jitter(tmp_path):
    import os

    marker = tmp_path / "lifespan"
    env = dict(os.environ, ASGI_RECYCLE_MARKER=str(marker))
    served = Served(APP, "--interface", "asgi", "--max-requests", "20", "--max-requests-jitter", "5", env=env)
    try:
        replies = hammer(served.host, served.port, 200, 4, "/slow?0.02")
        assert [s for s, _ in replies] == [200] * 200
        tokens = {body.decode().split()[0] for _, body in replies}
        assert len(tokens) >= 3, tokens  # 200 requests, a share of 20 to 25 each: recycled
    finally:
        served.stop()
    startups, shutdowns = marks(marker)
    assert set(tokens) <= set(startups)
    assert startups == shutdowns


def test_a_recycled_loop_keeps_its_open_websocket_until_it_ends(tmp_path, monkeypatch):
    websockets = pytest.importorskip("websockets", reason="the websockets client is in requirements-dev.txt")
    from websockets.asyncio.client import connect

    marker = tmp_path / "lifespan"
    monkeypatch.setenv("ASGI_RECYCLE_MARKER", str(marker))
    with manygil.Server(APP, workers=1, bind="127.0.0.1:0", interface="asgi", max_requests=5) as server:
        host, port = address(server)

        async def go():
            async with connect(f"ws://{host}:{port}/ws") as ws:
                await ws.send("hello")
                first_token = (await ws.recv()).split()[0]
                # More requests than the share: the loop holding the WebSocket starts a successor, which
                # takes the requests once it has started.
                loop = asyncio.get_running_loop()
                assert await loop.run_in_executor(None, until_handed_over, host, port, first_token) != first_token
                # The old interpreter still serves its WebSocket (within the recycle grace) ...
                await ws.send("still there?")
                assert await ws.recv() == f"{first_token} still there?"
                assert marks(marker)[1][first_token] == 0
                return first_token

        first_token = asyncio.run(go())
        # ... and ends once it has closed: its lifespan shutdown runs.
        assert wait_until(lambda: marks(marker)[1][first_token] == 1)
        assert get(host, port, "/")[0] == 200
    startups, shutdowns = marks(marker)
    assert startups == shutdowns


def test_a_recycled_loops_websocket_is_closed_1001_after_the_graceful_timeout(tmp_path):
    """The CLI's --graceful-timeout is the recycle grace (as gunicorn gives a recycled worker its
    graceful timeout): the old loop's WebSocket is closed 1001 once it has passed, and the old
    interpreter then ends (its lifespan shutdown runs)."""
    pytest.importorskip("websockets", reason="the websockets client is in requirements-dev.txt")
    import os

    from websockets.asyncio.client import connect
    from websockets.exceptions import ConnectionClosed

    marker = tmp_path / "lifespan"
    env = dict(os.environ, ASGI_RECYCLE_MARKER=str(marker))
    served = Served(APP, "--interface", "asgi", "--workers", "1", "--max-requests", "5", "--graceful-timeout", "0.5",
                    env=env)
    try:
        async def go() -> tuple[str, int]:
            async with connect(f"ws://{served.host}:{served.port}/ws") as ws:
                await ws.send("hello")
                first_token = (await ws.recv()).split()[0]
                loop = asyncio.get_running_loop()
                await loop.run_in_executor(None, until_handed_over, served.host, served.port, first_token)
                with pytest.raises(ConnectionClosed) as closed:
                    # The old loop closes it (nothing else is sent) after 0.5 s; the bound is below the
                    # default grace (30 s), so a --graceful-timeout that did not reach it fails here.
                    await asyncio.wait_for(ws.recv(), 20)
                return first_token, closed.value.rcvd.code

        first_token, code = asyncio.run(go())
        assert code == 1001
        assert wait_until(lambda: marks(marker)[1][first_token] == 1)
    finally:
        served.stop()


@pytest.mark.parametrize("interface", ["asgi", "auto"])
def test_max_requests_1_recycles_every_loop_under_auto_as_under_asgi(tmp_path, monkeypatch, interface):
    """--interface auto (the default) finds out that the application is ASGI in a pool job, on a pool
    made before it knew: neither that probe nor the loops' jobs count toward the pool's own recycling,
    so each loop is recycled by the handler after its share, exactly as under --interface asgi. (With
    the probe counted, its worker's successor took the slot from under the loop that worker then ran:
    that loop never recycled, and the new interpreter sat idle.)"""
    marker = tmp_path / "lifespan"
    monkeypatch.setenv("ASGI_RECYCLE_MARKER", str(marker))
    with manygil.Server(APP, workers=2, bind="127.0.0.1:0", interface=interface, max_requests=1) as server:
        assert server.interface == "asgi"
        host, port = address(server)
        first = list(marks(marker)[0])  # the two loops started before the server listened
        assert len(first) == 2

        def both_first_loops_retired() -> bool:
            assert get(host, port, "/")[0] == 200
            return all(marks(marker)[1][token] == 1 for token in first)

        assert wait_until(both_first_loops_retired)

        # Once quiet: two loops serve, and the pool recycled a worker only for each loop that retired.
        def settled() -> bool:
            startups, shutdowns = marks(marker)
            pool = server.stats()["pool"]
            return (sum(startups.values()) - sum(shutdowns.values()) == 2 and not pool["queued"]
                    and pool["recycled"] == sum(shutdowns.values()))

        assert wait_until(settled), (marks(marker), server.stats()["pool"])
        assert all(w["current"] is not None for w in server.stats()["pool"]["workers"])  # no idle interpreter
    startups, shutdowns = marks(marker)
    assert startups == shutdowns


def test_a_successor_whose_startup_fails_leaves_the_old_loop_serving_until_the_next_share(tmp_path, monkeypatch,
                                                                                         capfd):
    """A successor whose lifespan startup fails is dropped (logged once) and the old loop serves on;
    after another share it starts a new successor, which takes over."""
    marker, attempts = tmp_path / "lifespan", tmp_path / "attempts"
    monkeypatch.setenv("ASGI_RECYCLE_MARKER", str(marker))
    monkeypatch.setenv("ASGI_FAIL_EVERY_SECOND", str(attempts))  # the 2nd, 4th, ... startup fails
    with manygil.Server(APP, workers=1, bind="127.0.0.1:0", interface="asgi", max_requests=3) as server:
        host, port = address(server)
        first = get(host, port, "/")[1].decode().split()[0]
        served = Counter()

        def third_interpreter_serves() -> bool:
            status, body = get(host, port, "/")
            assert status == 200
            token = body.decode().split()[0]
            served[token] += 1
            return token != first

        assert wait_until(third_interpreter_serves)
        tries = attempts.read_text().split()
        assert tries[:2] == ["ok", first] and tries[2] == "failed" and tries[4:6] == ["ok", next(t for t in served
                                                                                             if t != first)]
        # The first loop served on through the failed attempt: at least two shares.
        assert served[first] + 1 >= 2 * 3, served
        assert wait_until(lambda: marks(marker)[1][first] == 1)  # then it retired
        # One interpreter in the pool's slot, running the new loop: the failed one and the first have left.
        assert wait_until(lambda: not server.stats()["pool"]["stuck"] and server.stats()["pool"]["recycled"] == 1)
        assert [w["current"] is not None for w in server.stats()["pool"]["workers"]] == [True]
    err = capfd.readouterr().err
    failed = attempts.read_text().split().count("failed")
    assert failed >= 1
    assert err.count("a new ASGI worker could not start (the old one serves on)") == failed, err
    assert "could not be recycled now" not in err, err


def test_failing_successors_of_two_loops_recycling_at_once_each_hand_back_their_own_slot(tmp_path, monkeypatch,
                                                                                           capfd):
    """Two loops recycling at the same time: each new interpreter runs the successor job of the loop
    that started it (not whichever was queued first), so a successor that fails gives back the right
    pool slot. (When jobs were queued, the wrong old worker could get its slot back: a retired loop
    then served on, unable to recycle, while an interpreter idled in its slot.)"""
    marker, attempts = tmp_path / "lifespan", tmp_path / "attempts"
    monkeypatch.setenv("ASGI_RECYCLE_MARKER", str(marker))
    with manygil.Server(APP, workers=2, bind="127.0.0.1:0", interface="asgi", max_requests=5) as server:
        # Only the successors (new interpreters copy the environment as it is then): every second fails.
        monkeypatch.setenv("ASGI_FAIL_EVERY_SECOND", str(attempts))
        host, port = address(server)
        replies = hammer(host, port, 200, 4, "/slow?0.005")
        assert [s for s, _ in replies] == [200] * 200

        def settled() -> bool:
            pool = server.stats()["pool"]
            startups, shutdowns = marks(marker)
            return (not pool["stuck"] and not pool["queued"] and all(w["current"] is not None for w in pool["workers"])
                    and sum(startups.values()) - sum(shutdowns.values()) == 2
                    and pool["recycled"] == sum(shutdowns.values()))

        assert wait_until(settled), (server.stats()["pool"], marks(marker))
    err = capfd.readouterr().err
    failed = attempts.read_text().split().count("failed")
    assert failed >= 1
    assert err.count("a new ASGI worker could not start (the old one serves on)") == failed, err
    assert "could not be recycled now" not in err, err
    startups, shutdowns = marks(marker)
    assert startups == shutdowns


def test_recycle_grace_refuses_a_negative_value():
    with pytest.raises(ValueError, match="recycle_grace"):
        manygil.Server(APP, workers=1, bind="127.0.0.1:0", interface="asgi", recycle_grace=-1)


def test_max_requests_refuses_a_negative_value():
    with pytest.raises(ValueError, match="max_requests"):
        manygil.Server(APP, workers=1, bind="127.0.0.1:0", interface="asgi", max_requests=-1)


# ---- clients that leave early ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def one():
    with manygil.Server(APP, workers=1, bind="127.0.0.1:0", interface="asgi") as server:
        yield server


def seen(server) -> dict:
    status, body = get(*address(server), "/seen")
    assert status == 200
    return json.loads(body)


def test_a_websocket_client_that_leaves_before_accept_is_heard_as_disconnect(one):
    with socket.create_connection(address(one)) as s:
        s.sendall(b"GET /ws-leaves HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                  b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
        time.sleep(0.2)  # the application has taken websocket.connect and waits in receive()
    # The task was not left hanging: it heard websocket.disconnect, its accept was harmless and a send
    # after it raised an OSError.
    assert wait_until(lambda: "send" in seen(one).get("/ws-leaves", {}))
    assert seen(one)["/ws-leaves"] == {"received": "websocket.disconnect", "code": 1006, "accepted": True,
                                       "send": "ConnectionResetError"}


def test_an_http_client_that_leaves_is_heard_as_disconnect(one):
    with socket.create_connection(address(one)) as s:
        s.sendall(b"GET /http-leaves HTTP/1.1\r\nHost: x\r\n\r\n")
        assert wait_until(lambda: "/http-leaves" in seen(one))
    assert wait_until(lambda: "then" in seen(one)["/http-leaves"])
    assert seen(one)["/http-leaves"] == {"first": "http.request", "then": "http.disconnect"}


# ---- a loop stuck in C code ----------------------------------------------------------------------------


@pytest.mark.slow
def test_a_loop_blocked_in_c_is_replaced_and_requests_go_on(tmp_path, monkeypatch, capfd):
    # One worker: without a replacement nothing else could be served while time.sleep blocks its
    # loop. (The sleep is 10 s, not a minute: stopping the server waits for the stuck call to return,
    # as for WSGI's stuck workers.)
    marker = tmp_path / "lifespan"
    monkeypatch.setenv("ASGI_RECYCLE_MARKER", str(marker))
    with manygil.Server(APP, workers=1, bind="127.0.0.1:0", interface="asgi", timeout=1.0) as server:
        host, port = address(server)
        status, body = get(host, port, "/")
        assert status == 200
        stuck_token = body.decode().split()[0]
        results = {}

        def blocked() -> None:
            results["blocked"] = get(host, port, "/block?10")

        t = threading.Thread(target=blocked)
        t.start()
        # The front end answers the blocked request 504 past the timeout; the loop is interrupted (in
        # vain: time.sleep), its worker replaced, and a new interpreter serves.
        t.join(60)
        assert results["blocked"][0] == 504
        assert wait_until(lambda: server.stats()["pool"]["replaced"] == 1)
        status, body = get(host, port, "/")
        assert status == 200 and body.decode().split()[0] != stuck_token
        for _ in range(5):
            assert get(host, port, "/")[0] == 200
        assert len(server.stats()["pool"]["stuck"]) == 1  # the old one still sleeps
        # When the sleep returns, the old loop finishes (TimeoutError in its request, which was
        # answered already) and ends: its lifespan shutdown runs.
        assert wait_until(lambda: marks(marker)[1][stuck_token] == 1, 60)
        assert wait_until(lambda: not server.stats()["pool"]["stuck"], 30)
    err = capfd.readouterr().err
    assert "blocked for over" in err


def test_a_loop_the_pool_replaced_as_stuck_hands_over_even_if_it_came_back(tmp_path, monkeypatch):
    """The pool's watchdog may replace a loop's worker as stuck just as the loop comes back to its
    selector (the loop withdraws the handler's interrupt; the pool had seen it pending and retires
    the worker anyway). The handler must then still post a successor for the new interpreter, or
    that interpreter sits idle and the old loop serves on in a retired worker. Driven here without a
    race: the loop's call is interrupted directly (not by the handler's watchdog, whose --timeout is
    far off), blocked in C until the pool has replaced it."""
    marker, blocking = tmp_path / "lifespan", tmp_path / "blocking"
    monkeypatch.setenv("ASGI_RECYCLE_MARKER", str(marker))
    monkeypatch.setenv("ASGI_BLOCK_MARKER", str(blocking))
    with manygil.Server(APP, workers=1, bind="127.0.0.1:0", interface="asgi", timeout=60.0) as server:
        host, port = address(server)
        token = get(host, port, "/")[1].decode().split()[0]
        results = {}
        t = threading.Thread(target=lambda: results.setdefault("blocked", get(host, port, "/block?4")))
        t.start()
        assert wait_until(blocking.exists)
        assert server._pool._core.interrupt_running("test: an interrupt the loop cannot hear in C", False) == 1
        assert wait_until(lambda: server.stats()["pool"]["replaced"] == 1)
        t.join(60)
        assert "blocked" in results  # answered (the interrupt raised in it once the sleep returned)
        # A successor took over on the new interpreter, and the old loop retired and left.
        assert wait_until(lambda: marks(marker)[1][token] == 1)
        assert wait_until(lambda: not server.stats()["pool"]["stuck"])
        status, body = get(host, port, "/")
        assert status == 200 and body.decode().split()[0] != token
        pool = server.stats()["pool"]
        assert [w["current"] is not None for w in pool["workers"]] == [True]
    startups, shutdowns = marks(marker)
    assert startups == shutdowns and len(startups) == 2


def test_a_loop_that_comes_back_after_the_interrupt_is_not_replaced(capfd):
    # Pure Python that never awaits: the interrupt lands (TimeoutError in that request) and the loop
    # serves on; its worker is not replaced.
    with manygil.Server(APP, workers=1, bind="127.0.0.1:0", interface="asgi", timeout=1.0) as server:
        host, port = address(server)
        token = get(host, port, "/")[1].decode().split()[0]
        assert get(host, port, "/spin")[0] in (500, 504)
        time.sleep(2)  # past the pool's stuck threshold: a pending interrupt would have had it replaced
        status, body = get(host, port, "/")
        assert status == 200 and body.decode().split()[0] == token
        assert server.stats()["pool"]["replaced"] == 0
