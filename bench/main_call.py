"""The cost issue 24 sets a target for: manygil.call_in_main's round trip with small arguments.

  python bench/main_call.py [--rounds 5] [--calls 20000] [--quick]

1. From 1 worker: call_in_main(operator.add, 1, 2) in a loop, microseconds per call (target < 20 us).
2. From 2 workers at once: the same, both loops together: microseconds per call as each worker sees
   it, and the calls per second main served in all.
3. Peers, measured in the same run, for the same shape of work (a call handed to another thread,
   the caller waiting for its result):
   - ThreadPoolExecutor(1).submit(operator.add, 1, 2).result() in the main interpreter: the
     stdlib's way to run a call on another thread and get its result back (what Pool(fallback="main")
     uses);
   - a queue.Queue ping-pong between two threads of one interpreter: the bare hand-over, with no
     future and no second interpreter.
4. Main busy: the same calls while the program's main thread runs pure Python the whole time. Each
   call then waits for the main GIL, at most until CPython's switch interval (sys.getswitchinterval(),
   5 ms by default) makes the main thread let go: milliseconds per call, shown, not a target.

Each figure is the best of --rounds rounds (shared machines are noisy).
"""

import argparse
import concurrent.futures as cf
import operator
import queue
import sys
import threading
import time

import manygil
from manygil import call_in_main


def calls_from_worker(n):
    """Runs in a worker: n round trips into main; seconds per call."""
    add = operator.add
    call_in_main(add, 1, 2)  # warm: the main-side thread exists, the callable is resolved
    start = time.perf_counter()
    for _ in range(n):
        call_in_main(add, 1, 2)
    return (time.perf_counter() - start) / n


def thread_pool_trip(executor, n):
    add = operator.add
    start = time.perf_counter()
    for _ in range(n):
        executor.submit(add, 1, 2).result()
    return (time.perf_counter() - start) / n


def queue_ping_pong(n):
    requests, replies = queue.Queue(), queue.Queue()

    def server():
        while (item := requests.get()) is not None:
            replies.put(operator.add(*item))

    t = threading.Thread(target=server)
    t.start()
    start = time.perf_counter()
    for _ in range(n):
        requests.put((1, 2))
        replies.get()
    took = (time.perf_counter() - start) / n
    requests.put(None)
    t.join()
    return took


def busy_main(pool, n):
    """Per-call seconds from one worker while this (the main) thread spins in Python."""
    future = pool.submit(calls_from_worker, n)
    x = 0
    while not future.done():
        x += 1  # pure Python, holding the main GIL except when CPython makes it let go
    return future.result()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--quick", action="store_true", help="fewer calls (for smoke tests)")
    args = parser.parse_args()
    rounds, n = args.rounds, (2000 if args.quick else args.calls)
    print(f"manygil call_in_main round trip: CPython {sys.version.split()[0]}, operator.add(1, 2), "
          f"{n} calls per round, best of {rounds}")

    one = two = two_rate = tpe = qpp = float("inf")
    with manygil.Pool(2) as pool, cf.ThreadPoolExecutor(1) as executor:
        pool.submit(calls_from_worker, 100).result()
        executor.submit(int).result()
        for _ in range(rounds):  # the models alternate
            one = min(one, pool.submit(calls_from_worker, n).result())
            start = time.perf_counter()
            futures = [pool.submit(calls_from_worker, n) for _ in range(2)]
            per_call = [f.result() for f in futures]
            wall = time.perf_counter() - start
            two = min(two, max(per_call))
            two_rate = min(two_rate, wall / (2 * n))
            tpe = min(tpe, thread_pool_trip(executor, n))
            qpp = min(qpp, queue_ping_pong(n))
        busy = min(busy_main(pool, 20 if args.quick else 100) for _ in range(min(rounds, 3)))

    us = 1e6
    rows = [
        ("1 worker", f"{one * us:7.2f} us/call", f"ThreadPoolExecutor {tpe * us:6.2f} us",
         f"ratio {one / tpe:5.2f}", "target < 20 us"),
        ("2 workers at once", f"{two * us:7.2f} us/call each", f"main served {1 / two_rate:,.0f} calls/s",
         f"queue.Queue ping-pong {qpp * us:6.2f} us", ""),
        ("main thread busy in Python", f"{busy * 1e3:7.2f} ms/call",
         f"switch interval {sys.getswitchinterval() * 1e3:.1f} ms", "", "(shown, not a target)"),
    ]
    for row in rows:
        print("  " + " | ".join(cell for cell in row if cell))
    print(f"  call_in_main from 1 worker: {'under' if one * us < 20 else 'OVER'} the 20 us target")


if __name__ == "__main__":
    main()
