"""asyncio: await pool.run(...), run_in_executor and wrap_future, without blocking the loop."""

import asyncio

import helpers
import manygil


def test_await_run(pool):
    async def main():
        return await pool.run(helpers.add, 2, b=3)

    assert asyncio.run(main()) == 5


def test_run_in_executor_and_wrap_future(pool):
    async def main():
        loop = asyncio.get_running_loop()
        a = await loop.run_in_executor(pool, helpers.square, 6)
        b = await asyncio.wrap_future(pool.submit(helpers.square, 7))
        return a, b

    assert asyncio.run(main()) == (36, 49)


def test_loop_keeps_running_while_a_task_is_blocked(pool, blocked_task):
    async def main():
        blocker = blocked_task.start(pool)
        waiting = asyncio.wrap_future(blocker)
        ticks = 0
        for _ in range(5):  # the loop is free: other coroutines run while the task is blocked
            await asyncio.sleep(0)
            ticks += 1
        blocked_task.release()
        return ticks, await waiting

    assert asyncio.run(main()) == (5, b"r")


def test_exceptions_propagate_through_await(pool):
    async def main():
        try:
            await pool.run(helpers.raise_value_error, "async boom")
        except ValueError as e:
            return str(e)

    assert asyncio.run(main()) == "async boom"
