"""Pinned workers (Pool(pin_workers=True), manygil serve --pin-workers): worker i runs on the (i mod n)-th
CPU the process may use, its successors (recycling) on the same one, and a parked interpreter reused by a
pool that does not pin gets every CPU back. Checked from inside the workers (os.sched_getaffinity(0) of
the worker's own thread)."""

from __future__ import annotations

import http.client
import json
import os
import sys
from pathlib import Path

import pytest

import helpers
import manygil
from served import address

APPS = Path(__file__).parent
if str(APPS) not in sys.path:
    sys.path.insert(0, str(APPS))  # serve_apps, importable by the workers too

CPUS = sorted(os.sched_getaffinity(0))


def placements(pool: manygil.Pool, workers: int, interpreters: set[int] | None = None) -> dict[int, list[int]]:
    """{worker index: its thread's CPUs}, one answer from every worker (their interpreters' ids added
    to `interpreters`)."""
    barrier = manygil.Barrier(workers)
    futures = [pool.submit(helpers.placement, barrier) for _ in range(workers)]
    answers = [f.result(timeout=60) for f in futures]
    found = {index: cpus for index, cpus, _ in answers}
    assert sorted(found) == list(range(workers))
    if interpreters is not None:
        interpreters.update(interp for _, _, interp in answers)
    return found


def test_pinned_pool_runs_worker_i_on_the_ith_cpu():
    workers = len(CPUS) + 1  # one more than the CPUs: the last wraps round to the first CPU
    with manygil.Pool(workers, pin_workers=True, reuse_interpreters=False) as pool:
        assert placements(pool, workers) == {i: [CPUS[i % len(CPUS)]] for i in range(workers)}


def test_unpinned_pool_places_nothing():
    with manygil.Pool(2, reuse_interpreters=False) as pool:
        assert placements(pool, 2) == {0: CPUS, 1: CPUS}


def test_a_reused_interpreter_gets_every_cpu_back():
    pinned_ids: set[int] = set()
    unpinned_ids: set[int] = set()
    with manygil.Pool(2, pin_workers=True) as pinned:
        assert placements(pinned, 2, pinned_ids) == {i: [CPUS[i % len(CPUS)]] for i in range(2)}
    with manygil.Pool(2) as unpinned:  # starts on the parked threads and interpreters of `pinned`
        assert placements(unpinned, 2, unpinned_ids) == {0: CPUS, 1: CPUS}
    assert unpinned_ids == pinned_ids  # the same interpreters (and threads), parked and taken over


def test_recycled_workers_keep_their_cpu():
    interpreters: set[int] = set()
    with manygil.Pool(2, pin_workers=True, max_tasks_per_child=1) as pool:
        for _ in range(200):  # successors take over as they become ready, while the old ones serve on
            # (a slot's old worker and its successor may then both answer a round: no check that
            # both slots did)
            barrier = manygil.Barrier(2)
            for f in [pool.submit(helpers.placement, barrier) for _ in range(2)]:
                index, cpus, interpreter = f.result(timeout=60)
                assert cpus == [CPUS[index % len(CPUS)]], (index, interpreter)
                interpreters.add(interpreter)
            if len(interpreters) >= 6:
                break
        assert len(interpreters) >= 6 and pool.stats()["recycled"] >= 4


def affinities(server: manygil.Server, requests: int = 20) -> set[tuple[int, ...]]:
    seen = set()
    for _ in range(requests):
        conn = http.client.HTTPConnection(*address(server), timeout=30)
        try:
            conn.request("GET", "/affinity")
            r = conn.getresponse()
            assert r.status == 200
            seen.add(tuple(json.loads(r.read())))
        finally:
            conn.close()
    return seen


def test_serve_pins_by_default_when_workers_match_the_cpus():
    with manygil.Server("serve_apps.asgi_plain:app", bind="127.0.0.1:0", log_level="warning") as server:
        assert server.workers == len(CPUS) and server.pinned
        assert affinities(server) <= {(cpu,) for cpu in CPUS}


@pytest.mark.skipif(len(CPUS) < 2, reason="one CPU: pinned or not, the same set")
def test_serve_does_not_pin_fewer_workers_than_cpus_unless_told():
    with manygil.Server("serve_apps.asgi_plain:app", workers=1, bind="127.0.0.1:0", log_level="warning") as server:
        assert not server.pinned
        assert affinities(server) == {tuple(CPUS)}
    with manygil.Server("serve_apps.asgi_plain:app", workers=1, bind="127.0.0.1:0", log_level="warning",
                        pin_workers="on") as server:
        assert server.pinned
        assert affinities(server) == {(CPUS[0],)}


def test_serve_pin_workers_off_and_bad_values():
    with manygil.Server("serve_apps.asgi_plain:app", bind="127.0.0.1:0", log_level="warning",
                        pin_workers="off") as server:
        assert not server.pinned
        assert affinities(server) == {tuple(CPUS)}
    for bad in ("yes", True, None):
        with pytest.raises(ValueError, match="pin_workers must be one of auto, on, off"):
            manygil.Server("serve_apps.asgi_plain:app", bind="127.0.0.1:0", pin_workers=bad)
