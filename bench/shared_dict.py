"""manygil.SharedDict against what process servers share state through, in one run (issue 27).

  python bench/shared_dict.py [--rounds 5] [--ops 20000] [--no-serve] [--duration 5]

Part 1, one small value per call (keys "key:0".."key:999", values of about 10 bytes; incr on ints):
get, set and incr from one manygil worker and from two at once (their combined rate), against Redis
(Debian's redis-server, started here on a Unix socket, through redis-py, from one and from two client
processes), multiprocessing.Manager().dict(), UltraDict (shared memory, from PyPI) and, for the floor,
Django's LocMemCache in one process. Models take turns within each round; each keeps its best round.

Part 2, a Django view that reads a product from the cache (stored on a miss) and increments a view
counter: manygil serve (2 worker interpreters, manygil.django.SharedCache) against gunicorn sync and
gthread and granian (2 worker processes each, Django's RedisCache on the same Redis), wrk -t2 -c64.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

KEYS = [f"key:{i}" for i in range(1000)]


# -- the measured loops (run in workers, client processes, or here) --------------------------------

def _loop(store_get, store_set, store_incr, op: str, n: int) -> float:
    """Seconds per call of op over n calls."""
    keys = KEYS
    if op == "get":
        t = time.perf_counter()
        for i in range(n):
            store_get(keys[i % 1000])
    elif op == "set":
        t = time.perf_counter()
        for i in range(n):
            store_set(keys[i % 1000], "value-1234")
    else:
        t = time.perf_counter()
        for i in range(n):
            store_incr("counter:" + keys[i % 100])
    return (time.perf_counter() - t) / n


def shared_dict_run(op: str, n: int, barrier=None) -> float:
    import manygil

    d = manygil.SharedDict.named("bench")
    if barrier is not None:
        barrier.wait()

    def incr(k):
        d.incr(k, 1, initial=0)

    return _loop(d.__getitem__, d.__setitem__, incr, op, n)


def redis_run(op: str, n: int, socket_path: str) -> float:
    import redis

    r = redis.Redis(unix_socket_path=socket_path)
    return _loop(r.get, r.set, r.incr, op, n)


def locmem_run(op: str, n: int) -> float:
    from django.conf import settings

    if not settings.configured:
        settings.configure(CACHES={"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache",
                                               "OPTIONS": {"MAX_ENTRIES": 10_000}}})
    from django.core.cache import cache

    def incr(k):
        if not cache.add(k, 1):
            cache.incr(k)

    return _loop(cache.get, cache.set, incr, op, n)


# -- the models --------------------------------------------------------------------------------------

class Models:
    def __init__(self, ops: int):
        import manygil

        self.n = ops
        self.tmp = tempfile.mkdtemp(prefix="manygil-bench-cache-")
        self.redis_socket = os.path.join(self.tmp, "redis.sock")
        self.redis = start_redis(self.redis_socket)
        self.clients = ProcessPoolExecutor(2)  # forkserver (manygil's default): started before interpreters
        list(self.clients.map(time.sleep, [0, 0]))
        self.pool = manygil.Pool(2)
        self.barrier = manygil.Barrier(2)
        d = manygil.SharedDict.named("bench")
        for k in KEYS:
            d[k] = "value-1234"
        import redis

        r = redis.Redis(unix_socket_path=self.redis_socket)
        for k in KEYS:
            r.set(k, "value-1234")
        from multiprocessing import Manager

        self.manager = Manager()
        self.manager_dict = self.manager.dict({k: "value-1234" for k in KEYS})
        try:
            from UltraDict import UltraDict

            self.ultra = UltraDict({k: "value-1234" for k in KEYS}, name=f"mg-bench-{os.getpid()}", create=True,
                                   auto_unlink=True, buffer_size=1 << 22)
            self.ultra_error = None
        except Exception as e:  # noqa: BLE001 - shown in the table instead
            self.ultra, self.ultra_error = None, f"{type(e).__name__}: {e}"

    def close(self):
        self.pool.shutdown()
        self.clients.shutdown()
        self.manager.shutdown()
        self.redis.terminate()
        self.redis.wait()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def names(self):
        return ["manygil, 1 worker", "manygil, 2 workers", "Redis, 1 client", "Redis, 2 clients",
                "Manager().dict()", "UltraDict", "LocMemCache (one process)"]

    def run(self, model: str, op: str) -> tuple[float | None, str | None]:
        """Seconds per call (for 2: at the combined rate), or None and why."""
        n = self.n
        if model == "manygil, 1 worker":
            return self.pool.submit(shared_dict_run, op, n).result(), None
        if model == "manygil, 2 workers":
            fs = [self.pool.submit(shared_dict_run, op, n, self.barrier) for _ in range(2)]
            return max(f.result() for f in fs) / 2, None
        if model == "Redis, 1 client":
            return self.clients.submit(redis_run, op, n // 4, self.redis_socket).result(), None
        if model == "Redis, 2 clients":
            fs = [self.clients.submit(redis_run, op, n // 4, self.redis_socket) for _ in range(2)]
            return max(f.result() for f in fs) / 2, None
        if model == "Manager().dict()":
            d = self.manager_dict
            if op == "incr":
                return None, "no atomic increment (a read and a write, with a Manager().Lock())"
            return _loop(d.get, d.__setitem__, None, op, n // 10), None
        if model == "UltraDict":
            if self.ultra is None:
                return None, self.ultra_error
            d = self.ultra
            if op == "incr":
                def incr(k):
                    with d.lock:
                        d[k] = d.get(k, 0) + 1
                return _loop(None, None, incr, op, n // 4), None
            return _loop(d.__getitem__, d.__setitem__, None, op, n // 4), None
        if model == "LocMemCache (one process)":
            return locmem_run(op, n), None
        raise ValueError(model)


def start_redis(socket_path: str) -> subprocess.Popen:
    server = shutil.which("redis-server") or "/usr/bin/redis-server"
    proc = subprocess.Popen([server, "--port", "0", "--unixsocket", socket_path, "--save", "", "--appendonly", "no"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while not os.path.exists(socket_path):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"redis-server did not start on {socket_path}")
        time.sleep(0.02)
    return proc


def part1(rounds: int, ops: int) -> dict:
    models = Models(ops)
    best: dict[tuple[str, str], float] = {}
    why: dict[str, str] = {}
    try:
        names = models.names()
        for r in range(rounds):
            order = names[r % len(names):] + names[:r % len(names)]
            for model in order:
                for op in ("get", "set", "incr"):
                    t, reason = models.run(model, op)
                    if t is None:
                        why[(model, op)] = reason
                    else:
                        best[(model, op)] = min(best.get((model, op), float("inf")), t)
    finally:
        models.close()
    print(f"\nOne small value per call (best of {rounds} rounds; for two workers or clients, the combined "
          "rate as time per call):\n")
    print("| model | get | set | incr | get vs manygil (1 worker) |")
    print("|---|---:|---:|---:|---:|")
    base = best[("manygil, 1 worker", "get")]
    for model in names:
        cells = []
        for op in ("get", "set", "incr"):
            t = best.get((model, op))
            cells.append(f"{t * 1e6:.2f} us" if t is not None else f"n/a ({why.get((model, op), '?')})")
        g = best.get((model, "get"))
        cells.append(f"{g / base:.1f}x" if g else "")
        print(f"| {model} | " + " | ".join(cells) + " |")
    scaling = best[("manygil, 1 worker", "get")] / best[("manygil, 2 workers", "get")]
    redis_ratio = best[("Redis, 1 client", "get")] / best[("manygil, 1 worker", "get")]
    print(f"\n  manygil get from a worker {base * 1e6:.3f} us (target < 0.5), set "
          f"{best[('manygil, 1 worker', 'set')] * 1e6:.3f} us (target < 1.0); Redis get / manygil get "
          f"{redis_ratio:.0f}x (target >= 30x); 2 workers reading: {scaling:.2f}x one worker's rate "
          "(target >= 1.6x)")
    return {f"{m} {op}": t for (m, op), t in best.items()}


# -- part 2: a Django view ----------------------------------------------------------------------------

def part2(rounds: int, duration: int) -> None:
    import serve as servebench

    tmp = tempfile.mkdtemp(prefix="manygil-bench-cache-serve-")
    sock = os.path.join(tmp, "redis.sock")
    redis_proc = start_redis(sock)
    try:
        servers = {
            "manygil serve + SharedCache": ("manygil", "manygil"),
            "gunicorn sync + Redis": ("gunicorn-sync", f"redis:{sock}"),
            "gunicorn gthread + Redis": ("gunicorn-gthread", f"redis:{sock}"),
            "granian + Redis": ("granian", f"redis:{sock}"),
        }
        best: dict[str, dict] = {}
        names = list(servers)
        for r in range(rounds):
            for name in names[r % len(names):] + names[:r % len(names)]:
                kind, backend = servers[name]
                port = servebench.free_port()
                cmd = servebench.commands("cache_app:application", port)[kind]
                env = dict(os.environ, MANYGIL_BENCH_CACHE=backend)
                proc = subprocess.Popen(cmd, cwd=HERE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                        process_group=0, env=env)
                try:
                    servebench.wait_ready(f"http://127.0.0.1:{port}/ready", proc)
                    result = servebench.run_wrk(proc, f"http://127.0.0.1:{port}/", duration, 64)
                finally:
                    servebench.stop(proc)
                if name not in best or result["rps"] > best[name]["rps"]:
                    best[name] = result
    finally:
        redis_proc.terminate()
        redis_proc.wait()
        shutil.rmtree(tmp, ignore_errors=True)
    base = best["gunicorn sync + Redis"]["rps"]
    print(f"\nA Django view reading and writing the cache (2 workers each, wrk -t2 -c64, best of {rounds}):\n")
    print("| server | req/s | p50 ms | p99 ms | RSS MiB | vs gunicorn sync + Redis |")
    print("|---|---:|---:|---:|---:|---:|")
    for name in names:
        b = best[name]
        print(f"| {name} | {b['rps']:,.0f} | {b['p50_ms']:.2f} | {b['p99_ms']:.2f} | {b['rss_mib']:.0f} | "
              f"{b['rps'] / base:.2f}x |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--ops", type=int, default=20_000)
    parser.add_argument("--duration", type=int, default=5)
    parser.add_argument("--no-serve", action="store_true", help="part 1 only")
    args = parser.parse_args()
    part1(args.rounds, args.ops)
    if not args.no_serve:
        part2(max(1, args.rounds // 2), args.duration)
    return 0


if __name__ == "__main__":
    sys.exit(main())
