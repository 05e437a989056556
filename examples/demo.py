"""The demo `make demo` runs: one CPU-bound pure-Python workload on every execution model.

  python examples/demo.py [--workers N] [--tasks T] [--fib K] [--rounds R]

Serial, ThreadPoolExecutor, ProcessPoolExecutor and manygil.Pool run the same tasks (naive fib) on
warmed-up pools. Shared machines are noisy, so each round runs every model once, in turn, and each
model keeps its best round; the table shows speedup vs serial and each model's time relative to
manygil.
"""

import argparse
import concurrent.futures as cf
import multiprocessing
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "bench"))
import workloads  # noqa: E402

import manygil  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description="CPU-bound Python on threads, processes and manygil")
    parser.add_argument("--workers", type=int, default=manygil._pool.default_workers())
    parser.add_argument("--tasks", type=int, default=0, help="default: 6 per worker")
    parser.add_argument("--fib", type=int, default=26)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    w, k, rounds = args.workers, args.fib, args.rounds
    tasks = args.tasks or 6 * w
    items = [k] * tasks
    print(f"manygil demo: {tasks} tasks of fib({k}) in pure Python, {w} workers, CPython "
          f"{sys.version.split()[0]}, best of {rounds} rounds")

    # Processes fork before any interpreter thread exists (fork after threads is unsafe): with the
    # fork context the executor starts all its processes at the first submission.
    with cf.ProcessPoolExecutor(w, mp_context=multiprocessing.get_context("fork")) as procs, \
            cf.ThreadPoolExecutor(w) as threads:
        list(procs.map(workloads.cpu_task, [10] * w))
        with manygil.Pool(w) as pool:
            pool.wait_ready()
            models = {
                "serial": lambda: [workloads.cpu_task(i) for i in items],
                "ThreadPoolExecutor": lambda: list(threads.map(workloads.cpu_task, items)),
                "ProcessPoolExecutor": lambda: list(procs.map(workloads.cpu_task, items)),
                "manygil.Pool": lambda: list(pool.map(workloads.cpu_task, items, chunksize=1)),
            }
            times = dict.fromkeys(models, float("inf"))
            for _ in range(rounds):
                for name, run in models.items():
                    start = time.perf_counter()
                    run()
                    times[name] = min(times[name], time.perf_counter() - start)

    serial, ours = times["serial"], times["manygil.Pool"]
    print(f"  {'model':<22} {'time':>9} {'speedup':>9} {'vs manygil':>11}")
    for name, t in times.items():
        print(f"  {name:<22} {t:8.3f}s {serial / t:8.2f}x {t / ours:10.2f}x")


if __name__ == "__main__":
    main()
