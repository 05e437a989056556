"""Seed scenario 2: a batch of images processed in parallel, in place, without copying.

  python examples/images.py [--images 16] [--size 256] [--workers N] [--rounds 3]

Synthetic RGB images live in manygil.SharedBuffers. A pure-Python grayscale filter runs on each in
parallel, writing the result into the same memory; the output is checked against a serial run.
ProcessPoolExecutor runs the same filter on copies (bytes in, bytes out) for comparison.
"""

import argparse
import concurrent.futures as cf
import multiprocessing
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import image_filters  # noqa: E402

import manygil  # noqa: E402


def make_images(count, size):
    images = []
    for k in range(count):
        buf = manygil.SharedBuffer(size * size * 3)
        image_filters.paint(buf, size, seed=k)
        images.append(buf)
    return images


def main():
    parser = argparse.ArgumentParser(description="parallel in-place image filtering with SharedBuffers")
    parser.add_argument("--images", type=int, default=16)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--workers", type=int, default=len(os.sched_getaffinity(0)))
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    n, size, w = args.images, args.size, args.workers
    print(f"manygil images: {n} RGB images of {size}x{size}, grayscale in pure Python, {w} workers, "
          f"best of {args.rounds}")

    # Shared machines are noisy: every round runs each model once, in turn; each keeps its best round.
    # Processes fork before any interpreter thread exists (fork after threads is unsafe).
    with cf.ProcessPoolExecutor(w, mp_context=multiprocessing.get_context("fork")) as procs:
        list(procs.map(image_filters.grayscale_copy, [b"\0\0\0"] * w))
        with manygil.Pool(w) as pool:
            pool.wait_ready()
            serial = best_proc = best_mg = float("inf")
            reference = None
            for _ in range(args.rounds):
                images = make_images(n, size)
                start = time.perf_counter()
                for buf in images:
                    image_filters.grayscale(buf)
                serial = min(serial, time.perf_counter() - start)
                reference = [bytes(b) for b in images]

                inputs = [bytes(b) for b in make_images(n, size)]
                start = time.perf_counter()
                outputs = list(procs.map(image_filters.grayscale_copy, inputs))
                best_proc = min(best_proc, time.perf_counter() - start)
                assert outputs == reference, "processes computed a different result"

                images = make_images(n, size)
                start = time.perf_counter()
                list(pool.map(image_filters.grayscale, images, chunksize=1))  # in place: nothing comes back
                best_mg = min(best_mg, time.perf_counter() - start)
                assert [bytes(b) for b in images] == reference, "manygil computed a different result"

    print(f"  serial              {serial:7.3f}s")
    print(f"  ProcessPoolExecutor {best_proc:7.3f}s  {serial / best_proc:5.2f}x vs serial")
    print(f"  manygil.Pool        {best_mg:7.3f}s  {serial / best_mg:5.2f}x vs serial, "
          f"{best_proc / best_mg:5.2f}x vs processes  (results identical to the serial run)")


if __name__ == "__main__":
    main()
