"""manygil.dask with a real distributed LocalCluster (issue 16, point 2): a worker process whose
tasks run in own-GIL interpreters, routed by annotation or by default; errors, the fallback for
modules that refuse own-GIL interpreters, metrics, and the profiler left on (it samples
sys._current_frames every 10 ms: that used to crash workers next to sub-interpreters)."""

from __future__ import annotations

import pytest

distributed = pytest.importorskip("distributed")

import dask  # noqa: E402
from distributed import Client, LocalCluster  # noqa: E402

import dask_tasks  # noqa: E402
import manygil.dask as mgd  # noqa: E402


def cluster(**plugin):
    lc = LocalCluster(n_workers=1, threads_per_worker=2, processes=True, host="127.0.0.1",
                      dashboard_address="127.0.0.1:0")
    client = Client(lc)
    client.register_plugin(mgd.ManygilPlugin(workers=2, **plugin))
    return lc, client


@pytest.fixture(scope="module")
def annotated():
    lc, client = cluster()
    yield client
    client.close()
    lc.close()


def test_the_cluster_is_on_loopback_with_the_profiler_on(annotated):
    assert annotated.scheduler.address.startswith("tcp://127.0.0.1:")
    info = annotated.scheduler_info()
    assert all(addr.startswith("tcp://127.0.0.1:") for addr in info["workers"])
    enabled = annotated.run(lambda: dask.config.get("distributed.worker.profile.enabled"))
    assert list(enabled.values()) == [True]


def test_annotated_tasks_run_in_interpreters_and_match(annotated):
    with dask.annotate(executor="manygil"):
        futures = annotated.map(dask_tasks.where, range(8))
    results = annotated.gather(futures)
    assert [r[0] for r in results] == [x * 2 for x in range(8)]
    assert all(r[1] != 0 for r in results)  # never the main interpreter
    plain = annotated.gather(annotated.map(dask_tasks.where, range(100, 103)))
    assert [r[1] for r in plain] == [0, 0, 0]  # unannotated: the worker's threads


def test_errors_come_back_with_their_type(annotated):
    with dask.annotate(executor="manygil"):
        future = annotated.submit(dask_tasks.fails, 7)
    with pytest.raises(ValueError, match="task 7 failed on purpose"):
        future.result()


def test_a_task_needing_psutil_takes_the_fallback(annotated):
    with dask.annotate(executor="manygil"):
        futures = annotated.map(dask_tasks.needs_psutil, range(3), pure=False)
    assert annotated.gather(futures) == [1, 2, 3]
    metrics = list(annotated.run(lambda dask_worker: dask_worker.metrics["manygil"](dask_worker)).values())[0]
    assert metrics["fallbacks"] >= 3
    assert metrics["tasks"] > 0 and metrics["busy_s"] > 0


def test_the_worker_survives_the_profiler_while_interpreters_run(annotated):
    # The profiler samples the worker's own threads (sys._current_frames every 10 ms); tasks on its
    # threads while the interpreters spin make it record something, which shows it ran meanwhile.
    with dask.annotate(executor="manygil"):
        in_interpreters = annotated.map(dask_tasks.spin, [0.5] * 6, pure=False)
    on_threads = annotated.map(dask_tasks.spin, [0.5] * 2, pure=False)
    assert all(i != 0 for i in annotated.gather(in_interpreters))
    assert annotated.gather(on_threads) == [0, 0]
    assert annotated.profile()["count"] > 0
    assert list(annotated.run(lambda: "alive").values()) == ["alive"]


def test_the_default_route_sends_every_task_to_the_interpreters():
    lc, client = cluster(default=True)
    try:
        results = client.gather(client.map(dask_tasks.where, range(6)))
        assert [r[0] for r in results] == [x * 2 for x in range(6)]
        assert all(r[1] != 0 for r in results)
        total = dask.delayed(sum)([dask.delayed(dask_tasks.where)(i)[0] for i in range(4)])
        assert client.compute(total).result() == 12
    finally:
        client.close()
        lc.close()


@pytest.mark.slow
def test_the_two_machine_example_spreads_tasks_over_workers_and_interpreters():
    import re
    import subprocess
    import sys
    from pathlib import Path

    example = Path(__file__).resolve().parents[2] / "examples" / "dask_two_machines.py"
    out = subprocess.run([sys.executable, str(example), "--tasks", "12", "--interpreters", "2"],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    rows = re.findall(r"worker (\S+)  interpreter (\d+): (\d+) tasks", out.stdout)
    assert sum(int(n) for _, _, n in rows) == 12
    assert len({w for w, _, _ in rows}) == 2  # both "machines" (worker processes) worked
    assert all(int(i) != 0 for _, i, _ in rows)  # every task ran in an own-GIL interpreter


def test_two_tasks_run_at_once_in_two_interpreters(annotated, tmp_path):
    with dask.annotate(executor="manygil"):
        a = annotated.submit(dask_tasks.rendezvous, "a", "b", str(tmp_path), pure=False)
        b = annotated.submit(dask_tasks.rendezvous, "b", "a", str(tmp_path), pure=False)
    ids = annotated.gather([a, b])
    assert -1 not in ids and 0 not in ids
    assert ids[0] != ids[1]
