"""Data-plane costs of issue 4, each against its peer in the same run.

0. Channel ping-pong between two interpreters, round trips per second (target >= 50,000), against two
   threads on a queue.Queue.

  python bench/data_plane.py [--rounds 5] [--quick]

1. Handing a SharedBuffer to a task and back: 100 MB vs 1 KB (target: the same within noise), with
   bytes of the same sizes for contrast (those are copied).
2. The value codec: pool.submit(identity, x).result() vs ONE pickle.loads(pickle.dumps(x)), for a dict
   of 1,000 str->int items and a list of 10,000 floats (target: ratio < 1.0), measured in turns.
"""

import argparse
import os
import queue
import threading
import pickle
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import workloads  # noqa: E402

import manygil  # noqa: E402


def interleaved(fns, n, rounds):
    """Best per-call time of each fn, the fns taking turns within every round: a shared, noisy host
    slows all of them alike instead of whichever happened to run during a slow spell."""
    best = [float("inf")] * len(fns)
    for _ in range(rounds):
        for i, fn in enumerate(fns):
            start = time.perf_counter()
            for _ in range(n):
                fn()
            best[i] = min(best[i], (time.perf_counter() - start) / n)
    return best


def per_call(fn, n, rounds):
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(n):
            fn()
        best = min(best, (time.perf_counter() - start) / n)
    return best


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="smaller sizes (for smoke tests)")
    args = parser.parse_args()
    big = (1 << 20) if args.quick else 100 * (1 << 20)
    n = 20 if args.quick else 200
    print(f"manygil data plane: CPython {sys.version.split()[0]}, best of {args.rounds}")
    trips = 2_000 if args.quick else 50_000
    with manygil.Pool(2) as pool:
        pool.wait_ready()
        best_mg = float("inf")
        for _ in range(args.rounds):
            a, b = manygil.Channel(), manygil.Channel()
            start = time.perf_counter()
            ponger = pool.submit(workloads.pong, a, b, trips)
            pool.submit(workloads.ping, a, b, trips).result()
            ponger.result()
            best_mg = min(best_mg, time.perf_counter() - start)
    best_th = float("inf")
    for _ in range(args.rounds):
        a, b = queue.Queue(), queue.Queue()
        t = threading.Thread(target=workloads.pong, args=(a, b, trips))
        start = time.perf_counter()
        t.start()
        workloads.ping(a, b, trips)
        t.join()
        best_th = min(best_th, time.perf_counter() - start)
    print(f"  Channel ping-pong, 2 interpreters: {trips / best_mg:10,.0f} round trips/s | threads + queue.Queue "
          f"{trips / best_th:10,.0f}/s | ratio {best_th / best_mg:5.2f} (target >= 50,000/s)")
    with manygil.Pool(1) as pool:
        def trip(x):
            return lambda: pool.submit(workloads.noop, x).result()

        trip(0)()  # warm up: the worker imports workloads once

        small_buf, big_buf = manygil.SharedBuffer(1024), manygil.SharedBuffer(big)
        t_small, t_big = per_call(trip(small_buf), n, args.rounds), per_call(trip(big_buf), n, args.rounds)
        print(f"  SharedBuffer to a task and back: {big >> 20} MB {t_big * 1e6:8.1f} us | 1 KB {t_small * 1e6:8.1f} us"
              f" | ratio {t_big / t_small:5.2f} (target ~1.0)")
        small_b, big_b = bytes(1024), bytes(big)
        b_small, b_big = per_call(trip(small_b), max(2, n // 20), args.rounds), per_call(trip(big_b), 2, args.rounds)
        print(f"  bytes (copied) for contrast    : {big >> 20} MB {b_big * 1e6:8.1f} us | 1 KB {b_small * 1e6:8.1f} us"
              f" | ratio {b_big / b_small:7.1f}")
        for name, x in (("dict of 1,000 str->int", {f"key{i}": i for i in range(1000)}),
                        ("list of 10,000 floats", [i * 0.5 for i in range(10_000)])):
            identity, pickled, codec = interleaved(
                [trip(x), lambda: pickle.loads(pickle.dumps(x, 5)), lambda: manygil._core._codec_roundtrip(x)],
                max(5, n // 10), 10 * args.rounds)
            print(f"  identity task, {name}: {identity * 1e6:8.1f} us | one pickle round trip {pickled * 1e6:8.1f} us"
                  f" | ratio {identity / pickled:5.2f} (target < 1.0)")
            print(f"    (one codec round trip, no dispatch: {codec * 1e6:8.1f} us = {codec / pickled:4.2f} pickle round "
                  f"trips; an identity task makes two)")


if __name__ == "__main__":
    main()
