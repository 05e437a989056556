"""The costs issue 3 sets targets for, each as a ratio against its peer measured in the same run.

  python bench/executor_overhead.py [--workers 2] [--rounds 3] [--quick]

1. submit(f, x).result() round trip for a trivial f: manygil.Pool vs ThreadPoolExecutor (target <= 1.0).
2. list(pool.map(f, range(100_000))) per item: manygil (default chunksize) vs ProcessPoolExecutor.map
   at its best chunksize (target: <= 0.5 us/item and faster than processes).
3. CPU-bound scaling: the same fib tasks on 1 worker and on N workers (target >= 1.9x on 2).
4. Start-up to first results, each model in a fresh process: a pool of N and map(abs, ...) over 4N
   items; manygil's first pool, and a second one in the same process (on the first one's parked
   interpreters), against fork, forkserver and spawn process pools and the stdlib's interpreters
   (target: first <= fork, second well below).

Each figure is the best of --rounds rounds (shared machines are noisy), models measured alternately.
"""

import argparse
import concurrent.futures as cf
import multiprocessing
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import workloads  # noqa: E402

import manygil  # noqa: E402


def best(rounds, fn):
    return min(fn() for _ in range(rounds))


def round_trip(pool, n):
    def run():
        start = time.perf_counter()
        for i in range(n):
            pool.submit(workloads.noop, i).result()
        return (time.perf_counter() - start) / n
    return run


def map_items(pool, n, chunksize=None):
    def run():
        start = time.perf_counter()
        kwargs = {} if chunksize is None else {"chunksize": chunksize}
        out = list(pool.map(workloads.noop, range(n), **kwargs))
        assert len(out) == n
        return (time.perf_counter() - start) / n
    return run


def cpu(pool, tasks, k):
    def run():
        start = time.perf_counter()
        list(pool.map(workloads.cpu_task, [k] * tasks, chunksize=1))
        return time.perf_counter() - start
    return run


# Run in a fresh process per measurement: prints the milliseconds from creating the pool to its first
# results (and, for manygil, the same again for a second pool after shutting the first down).
_STARTUP_CHILD = r"""
import sys, time
import concurrent.futures as cf, multiprocessing
model, w = sys.argv[1], int(sys.argv[2])
items = list(range(4 * w))
if model == "manygil":
    import manygil
def start():
    if model == "manygil":
        return manygil.Pool(w)
    if model == "stdlib interpreters":
        executor = getattr(cf, "InterpreterPoolExecutor", None)
        if executor is None:
            from interpreters_backport.concurrent.futures import InterpreterPoolExecutor as executor
        return executor(w)
    return cf.ProcessPoolExecutor(w, mp_context=multiprocessing.get_context(model))
times = []
for _ in range(2 if model == "manygil" else 1):
    t0 = time.perf_counter()
    pool = start()
    assert list(pool.map(abs, items, chunksize=1)) == items
    times.append((time.perf_counter() - t0) * 1e3)
    pool.shutdown()
print(*times)
"""


def startup(w, rounds):
    """{model: best ms} over `rounds` fresh processes per model, the models interleaved."""
    models = ["fork", "forkserver", "spawn", "stdlib interpreters", "manygil"]
    best_ms = {}
    for _ in range(rounds):
        for model in models:
            proc = subprocess.run([sys.executable, "-c", _STARTUP_CHILD, model, str(w)], capture_output=True,
                                  text=True, timeout=120)
            if proc.returncode != 0:
                best_ms.setdefault(model, None)  # unavailable here (e.g. no interpreters backport)
                continue
            times = [float(t) for t in proc.stdout.split()]
            names = [model] if len(times) == 1 else ["manygil (first pool)", "manygil (second pool)"]
            for name, t in zip(names, times):
                best_ms[name] = t if best_ms.get(name) is None else min(best_ms[name], t)
    return best_ms


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="smaller sizes (for smoke tests)")
    args = parser.parse_args()
    w, rounds = args.workers, args.rounds
    trips, items, tasks, k = (300, 10_000, 2 * w, 20) if args.quick else (3000, 100_000, 8 * w, 25)
    print(f"manygil executor overhead: CPython {sys.version.split()[0]}, {w} workers, best of {rounds}")

    # Processes first: forking a process that already runs interpreter threads is unsafe.
    with cf.ProcessPoolExecutor(w, mp_context=multiprocessing.get_context("fork")) as procs:
        list(procs.map(workloads.noop, range(1000)))  # warm up
        proc_map = {cs: best(rounds, map_items(procs, items, cs)) for cs in (64, 256, 1024, 4096)}
    with cf.ThreadPoolExecutor(w) as threads, manygil.Pool(w) as pool, manygil.Pool(1) as single:
        for p in (threads, pool, single):
            list(p.map(workloads.noop, range(100)))
        thread_trip = mg_trip = float("inf")
        for _ in range(rounds):  # alternate the two models
            thread_trip = min(thread_trip, round_trip(threads, trips)())
            mg_trip = min(mg_trip, round_trip(pool, trips)())
        mg_map = best(rounds, map_items(pool, items))
        one = many = float("inf")
        for _ in range(rounds):
            one = min(one, cpu(single, tasks, k)())
            many = min(many, cpu(pool, tasks, k)())

    best_cs = min(proc_map, key=proc_map.get)
    rows = [
        ("submit().result(), trivial f", f"{mg_trip * 1e6:8.1f} us", f"threads {thread_trip * 1e6:8.1f} us",
         f"ratio {mg_trip / thread_trip:5.2f}", "target <= 1.0"),
        (f"map over {items:,} items", f"{mg_map * 1e6:8.3f} us/item",
         f"processes {proc_map[best_cs] * 1e6:6.3f} us/item (chunksize {best_cs})",
         f"ratio {mg_map / proc_map[best_cs]:5.2f}", "target <= 0.5 us and < processes"),
        (f"CPU-bound: {tasks} x fib({k})", f"{many:8.3f} s on {w}", f"{one:.3f} s on 1",
         f"speedup {one / many:5.2f}x", f"target >= {0.95 * w:.1f}x"),
    ]
    for row in rows:
        print("  " + " | ".join(row))

    ms = startup(w, max(rounds, 5) if not args.quick else rounds)
    fork = ms.get("fork")
    print(f"  start-up to first results, Pool({w}), best of {max(rounds, 5) if not args.quick else rounds} "
          "fresh processes:")
    for name, t in ms.items():
        if t is None:
            print(f"    {name:<24} unavailable here")
            continue
        ratio = f"  ratio to fork {t / fork:5.2f}" if fork else ""
        print(f"    {name:<24} {t:7.2f} ms{ratio}")
    print("    target: first pool <= fork, second pool well below")


if __name__ == "__main__":
    main()
