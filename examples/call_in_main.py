"""The README's call_in_main example: workers do the pure-Python part (random walks) in parallel, and
one step that needs NumPy (which refuses own-GIL interpreters) runs in the main interpreter, on the
worker's SharedBuffer, without a copy."""

import random

import manygil
from manygil import SharedBuffer, call_in_main


def smooth(buf):                        # runs in the main interpreter (NumPy refuses workers)
    import numpy as np

    a = np.frombuffer(buf)              # the worker's memory: no copy
    a[:] = np.convolve(a, np.ones(9) / 9, mode="same")
    return float(a.std())


def simulate(seed, n=200_000):          # runs in a worker: pure Python, in parallel
    rng = random.Random(seed)
    buf = SharedBuffer(8 * n)
    walk = memoryview(buf).cast("d")
    x = 0.0
    for i in range(n):
        x += rng.gauss(0.0, 1.0)
        walk[i] = x
    spread = call_in_main(smooth, buf)  # one step in main, on the same memory
    return max(walk) - min(walk), spread


if __name__ == "__main__":
    with manygil.Pool() as pool:
        for seed, (extent, spread) in enumerate(pool.map(simulate, range(8))):
            print(f"walk {seed}: extent {extent:8.1f}, std after smoothing {spread:7.1f}")
