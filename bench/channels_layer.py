"""manygil.channels.SharedChannelLayer against channels_redis's RedisChannelLayer (Debian's
redis-server, started here on a Unix socket) and Channels' InMemoryChannelLayer, in one run.

  python bench/channels_layer.py [--rounds 3] [--messages 200] [--consumers 50]

Two workloads, each layer driven by the same code:
- ping-pong: two tasks of one event loop pass a message back and forth over two channels (round
  trips/s); the floor is InMemoryChannelLayer, which never leaves the loop.
- broadcast: 2 workers each hold `consumers` channels in one group, each receiving in the worker's
  own event loop; the main interpreter group_sends `messages` messages; deliveries/s until every
  consumer has every message. The shared layer's workers are manygil worker interpreters (as under
  manygil serve); channels_redis's are 2 processes (as under uvicorn or daphne: there msgpack's C
  extension loads, which a worker interpreter would refuse). InMemoryChannelLayer cannot do this
  (its groups live in one interpreter).
Best of the rounds, layers interleaved in a rotating order. The machine may be shared: read the
ratios of one run, not the absolute numbers.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import manygil

sys.path.insert(0, str(Path(__file__).resolve().parent))
from shared_dict import start_redis  # noqa: E402  (Debian's redis-server on a Unix socket)

LAYERS = ("manygil SharedChannelLayer", "channels_redis", "InMemoryChannelLayer")


def make_layer(kind: str, redis_url: str, name: str):
    if kind.startswith("manygil"):
        from manygil.channels import SharedChannelLayer

        return SharedChannelLayer(name=name, capacity=100_000)
    if kind == "channels_redis":
        from channels_redis.core import RedisChannelLayer

        return RedisChannelLayer(hosts=[redis_url], capacity=100_000, prefix=name)
    from channels.layers import InMemoryChannelLayer

    return InMemoryChannelLayer(capacity=100_000)


async def ping_pong(layer, n: int) -> float:
    ping, pong = await layer.new_channel(), await layer.new_channel()

    async def echo():
        for _ in range(n):
            message = await layer.receive(ping)
            await layer.send(pong, message)

    task = asyncio.create_task(echo())
    start = time.perf_counter()
    for i in range(n):
        await layer.send(ping, {"type": "ping", "i": i})
        await layer.receive(pong)
    elapsed = time.perf_counter() - start
    await task
    return n / elapsed


def consume(kind: str, redis_url: str, name: str, consumers: int, messages: int, ready, go) -> int:
    """In a worker (interpreter or process): join `consumers` channels to the group, say so on `ready`, and receive every
    message on each; returns the deliveries counted."""

    async def run() -> int:
        from django.conf import settings

        if not settings.configured:
            settings.configure()
        layer = make_layer(kind, redis_url, name)
        names = [await layer.new_channel() for _ in range(consumers)]
        for n in names:
            await layer.group_add("bench", n)
        (ready.put if hasattr(ready, "put") else ready.send)(len(names))  # a process's queue, or a Channel
        await asyncio.to_thread(go.wait)

        async def one(channel: str) -> int:
            for _ in range(messages):
                await layer.receive(channel)
            return messages

        counts = await asyncio.gather(*(one(n) for n in names))
        if hasattr(layer, "flush"):
            for n in names:
                await layer.group_discard("bench", n)
        return sum(counts)

    return asyncio.run(run())


def broadcast(pool, manager, kind: str, redis_url: str, consumers: int, messages: int, round_no: int) -> float:
    name = f"b{round_no}{kind[:3]}".replace(" ", "")
    if isinstance(pool, manygil.Pool):
        ready, go = manygil.Channel(), manygil.Event()
        take = lambda: ready.recv(timeout=60)  # noqa: E731
    else:
        ready, go = manager.Queue(), manager.Event()
        take = lambda: ready.get(timeout=60)  # noqa: E731
    futures = [pool.submit(consume, kind, redis_url, name, consumers, messages, ready, go) for _ in range(2)]
    for _ in futures:
        take()

    async def send_all() -> float:
        layer = make_layer(kind, redis_url, name)
        start = time.perf_counter()
        go.set()
        for i in range(messages):
            await layer.group_send("bench", {"type": "news", "i": i})
        delivered = sum(await asyncio.gather(*(asyncio.wrap_future(f) for f in futures)))
        return delivered / (time.perf_counter() - start)

    return asyncio.run(send_all())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--pings", type=int, default=3000)
    parser.add_argument("--messages", type=int, default=200)
    parser.add_argument("--consumers", type=int, default=50)
    args = parser.parse_args()
    from django.conf import settings

    settings.configure()  # Channels reads settings lazily; nothing here needs any
    with tempfile.TemporaryDirectory() as tmp:
        socket_path = os.path.join(tmp, "redis.sock")
        redis = start_redis(socket_path)
        redis_url = f"unix://{socket_path}"
        best: dict[tuple[str, str], float] = {}
        try:
            context = multiprocessing.get_context("spawn")
            with manygil.Pool(2) as pool, ProcessPoolExecutor(2, mp_context=context) as processes, \
                    context.Manager() as manager:
                for r in range(args.rounds):
                    order = LAYERS[r % len(LAYERS):] + LAYERS[:r % len(LAYERS)]
                    for kind in order:
                        rate = asyncio.run(ping_pong(make_layer(kind, redis_url, f"p{r}"), args.pings))
                        best[(kind, "ping-pong")] = max(best.get((kind, "ping-pong"), 0), rate)
                        print(f"round {r + 1}: ping-pong {kind:27} {rate:10.0f} round trips/s", flush=True)
                        if kind == "InMemoryChannelLayer":
                            continue
                        rate = broadcast(pool if kind.startswith("manygil") else processes, manager, kind, redis_url,
                                         args.consumers, args.messages, r)
                        best[(kind, "broadcast")] = max(best.get((kind, "broadcast"), 0), rate)
                        print(f"round {r + 1}: broadcast {kind:27} {rate:10.0f} deliveries/s", flush=True)
        finally:
            redis.terminate()
            redis.wait()
    print(f"\nbest of {args.rounds} rounds (broadcast: 2 workers x {args.consumers} consumers x {args.messages} "
          "messages):")
    for workload, unit in (("ping-pong", "round trips/s"), ("broadcast", "deliveries/s")):
        redis_rate = best.get(("channels_redis", workload))
        for kind in LAYERS:
            if (kind, workload) not in best:
                continue
            rate = best[(kind, workload)]
            ratio = f"{rate / redis_rate:6.2f}x channels_redis" if redis_rate else ""
            print(f"{workload:9} {kind:27} {rate:10.0f} {unit:14} {ratio}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
