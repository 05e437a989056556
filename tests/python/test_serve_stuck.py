"""A request stuck in C past --timeout (issue 23): the worker's interrupt cannot reach a call that does
not return to bytecode (time.sleep, a blocking read in a C client library), so the front end answers
504 itself half a second after the timeout and drops the late response, and the stuck worker is
replaced so the server keeps its capacity."""

from __future__ import annotations

import http.client
import json
import sys
import time
from pathlib import Path

import manygil
import pytest

APPS = Path(__file__).parent
if str(APPS) not in sys.path:
    sys.path.insert(0, str(APPS))


def get(server, path, timeout=30):
    host, port = server.addresses[0].rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=timeout)
    try:
        conn.request("GET", path)
        r = conn.getresponse()
        return r.status, r.read(), r.getheader("Connection")
    finally:
        conn.close()


@pytest.mark.slow
def test_a_request_blocked_in_c_is_answered_504_after_the_timeout(capfd):
    with manygil.Server("serve_apps.plain:app", workers=2, bind="127.0.0.1:0", timeout=1.0) as server:
        started = time.monotonic()
        status, body, connection = get(server, "/sleep?6")  # time.sleep: no bytecode for 6 s
        took = time.monotonic() - started
        assert status == 504 and connection == "close", body
        assert took < 4, f"answered after {took:.1f} s"  # 1 s timeout + 0.5 s + the 200 ms sweep, unloaded
        assert b"still busy" in body
        # The other worker serves meanwhile; an interruptible request still gets the worker's own 504.
        assert get(server, "/fine")[0] == 200
        assert get(server, "/spin")[0] == 504
        time.sleep(5)  # the stuck call returns: its late answer is dropped, the worker serves again
        for i in range(4):
            status, body, _ = get(server, f"/after{i}")
            assert status == 200 and json.loads(body)["path"] == f"/after{i}"
        stats = server.stats()
        assert stats["pending"] == 0  # the late response was counted back
    assert "504 Gateway Timeout" in capfd.readouterr().err


@pytest.mark.slow
def test_a_stuck_worker_is_replaced_and_the_server_keeps_its_capacity(capfd):
    # One worker: without a replacement, nothing else could be served until the stuck call returns.
    with manygil.Server("serve_apps.plain:app", workers=1, bind="127.0.0.1:0", timeout=1.0) as server:
        before = server.stats()["pool"]["workers"][0]["interpreter_id"]
        assert get(server, "/sleep?8")[0] == 504
        # A request queued behind the stuck one would time out too; a moment later a new worker is in.
        deadline = time.monotonic() + 30
        while server.stats()["pool"]["replaced"] == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        # Served by the new worker while the stuck one still sleeps.
        status, body, _ = get(server, "/fine")
        assert status == 200 and json.loads(body)["path"] == "/fine"
        pool = server.stats()["pool"]
        assert pool["replaced"] == 1
        assert len(pool["workers"]) == 1 and pool["workers"][0]["interpreter_id"] != before
        assert [w["interpreter_id"] for w in pool["stuck"]] == [before]
        assert pool["stuck"][0]["current"]["task"] == "WSGI GET /sleep?8"
        for i in range(3):
            assert get(server, f"/again{i}")[0] == 200
        # The stuck call returns: its late answer is dropped and its interpreter ends.
        deadline = time.monotonic() + 60
        while server.stats()["pool"]["stuck"] and time.monotonic() < deadline:
            time.sleep(0.2)
        pool = server.stats()["pool"]
        assert pool["stuck"] == [] and pool["replaced"] == 1
        assert server.stats()["pending"] == 0
    err = capfd.readouterr().err
    assert "worker 0 (interpreter" in err and "is stuck: WSGI GET /sleep?8" in err, err
    assert 'plain.py", line' in err and ", in app" in err, err  # its Python stack
