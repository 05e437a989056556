"""A typed use of manygil's public API. tests/python/test_typing.py runs mypy --strict on this file,
and runs it."""

from __future__ import annotations

import asyncio
from concurrent.futures import Future

import manygil


def square(x: int) -> int:
    return x * x


class Counter:
    def __init__(self, start: int) -> None:
        self.n = start

    def add(self, k: int) -> int:
        self.n += k
        return self.n


async def awaited(pool: manygil.Pool) -> int:
    return await pool.run(square, 5)


def main() -> list[object]:
    seen: list[object] = []
    with manygil.Pool(2, "typed") as pool:
        future: Future[int] = pool.submit(square, 3)
        seen.append(future.result())
        total: int = sum(pool.map(square, range(10), chunksize=2))
        seen.append(total)
        limited: Future[int] = pool.submit_with(square, (4,), timeout=30.0)
        seen.append(limited.result())
        seen.append(asyncio.run(awaited(pool)))
        workers: int = pool.max_workers
        seen.append(workers)
        stacks: list[str] = pool.dump_stacks(timeout=1.0)
        seen.append(len(stacks))
    buffer = manygil.SharedBuffer(8)
    memoryview(buffer)[0] = 7
    channel = manygil.Channel(maxsize=2)
    channel.send(bytes(buffer)[:1])
    seen.append(channel.recv(timeout=1.0))
    lock, event = manygil.Lock(), manygil.Event()
    with lock:
        event.set()
    seen.append(event.wait(0.0))
    with manygil.Interpreter() as interp:
        interp.exec("x = 1")
        seen.append(interp.call(square, 6))
    with manygil.actor(Counter, 10) as counter:
        seen.append(counter.add(5).result())
    try:
        manygil.Pool(1, initializer=int, initargs=("not a number",)).submit(square, 1).result()
    except manygil.BrokenPool as e:
        seen.append(type(e).__name__)
    # In the main interpreter these are plain calls (from a worker: calls made in main).
    in_main: int = manygil.call_in_main(square, 7)
    seen.append(in_main)
    seen.append(manygil.call_in_main_with(square, (2,), timeout=1.0))
    return seen


if __name__ == "__main__":
    print(main())
