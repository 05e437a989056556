"""One Dask worker with a manygil executor against its peers (issue 16), with distributed, in one run:

  python bench/dask_workers.py [--rounds 3] [--tasks 24] [--seconds 0.08]

  threads:     1 worker process x 2 threads (the GIL: one task at a time)
  manygil:     1 worker process x 2 own-GIL interpreters (ManygilPlugin, default executor; the
               worker keeps nthreads=2, which bounds how many tasks it runs at once)
  processes:   2 worker processes x 1 thread
Each runs the same pure-Python tasks (a loop calibrated to take --seconds on one thread); the models take turns within
every round and keep their best time. Memory: the worker processes' RSS summed, after the run.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from pathlib import Path

import dask
from distributed import Client, LocalCluster

import manygil.dask as mgd


def busy(n: int) -> int:
    """A fixed amount of pure-Python work (not a wall-clock wait, which threads would share)."""
    total = 0
    for i in range(n):
        total += i * i % 7
    return total


def calibrate(seconds: float) -> int:
    """The n for which busy(n) takes `seconds` here, on one thread."""
    n = 100_000
    while True:
        started = time.perf_counter()
        busy(n)
        took = time.perf_counter() - started
        if took > 0.02:
            return int(n * seconds / took)
        n *= 2


def rss_mib(pid: int) -> float:
    text = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"^VmRSS:\s+(\d+)", text, re.M).group(1)) / 1024


MODELS = {
    "threads": dict(n_workers=1, threads_per_worker=2, plugin=False),
    "manygil": dict(n_workers=1, threads_per_worker=2, plugin=True),  # nthreads bounds tasks at once
    "processes": dict(n_workers=2, threads_per_worker=1, plugin=False),
}


def run(model: str, tasks: int, n: int) -> tuple[float, float]:
    spec = MODELS[model]
    with LocalCluster(n_workers=spec["n_workers"], threads_per_worker=spec["threads_per_worker"], processes=True,
                      host="127.0.0.1", dashboard_address="127.0.0.1:0") as cluster, Client(cluster) as client:
        if spec["plugin"]:
            client.register_plugin(mgd.ManygilPlugin(default=True))  # 2 interpreters: the worker's nthreads
        client.gather(client.map(busy, [1000] * 4, pure=False))  # warm: imports, interpreters
        started = time.perf_counter()
        client.gather(client.map(busy, [n] * tasks, pure=False))
        elapsed = time.perf_counter() - started
        pids = client.run(lambda: __import__("os").getpid())
        memory = sum(rss_mib(pid) for pid in pids.values())
    return elapsed, memory


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--tasks", type=int, default=24)
    parser.add_argument("--seconds", type=float, default=0.08)
    args = parser.parse_args()
    dask.config.set({"distributed.worker.profile.enabled": True})  # the default; stated: it stays on
    n = calibrate(args.seconds)
    best: dict[str, tuple[float, float]] = {}
    models = list(MODELS)
    for r in range(args.rounds):
        for m in models[r % 3:] + models[:r % 3]:
            elapsed, memory = run(m, args.tasks, n)
            print(f"round {r + 1}: {m:10} {elapsed:6.2f} s  workers' RSS {memory:5.0f} MiB", flush=True)
            if m not in best or elapsed < best[m][0]:
                best[m] = (elapsed, max(memory, best.get(m, (0, 0))[1]))
    t = best["threads"][0]
    p = best["processes"][0]
    print(f"\nbest of {args.rounds}: {args.tasks} tasks x {args.seconds * 1000:.0f} ms of pure Python")
    for m, (elapsed, memory) in best.items():
        print(f"  {m:10} {elapsed:6.2f} s  RSS {memory:5.0f} MiB   {t / elapsed:4.2f}x threads'   "
              f"{elapsed / p:4.2f}x processes' time")
    return 0


if __name__ == "__main__":
    sys.exit(main())
