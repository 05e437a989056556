"""Channel.recv_async (asyncio waits on a manygil.Channel, woken from any thread or interpreter) and
manygil.channels.SharedChannelLayer (a Django Channels layer every worker shares), down to a Channels
chat served by `manygil serve` with 2 workers and driven by the `websockets` client. No time is
asserted: a test waits for an event, with a generous bound."""

from __future__ import annotations

import asyncio
import json
import os
import threading

import pytest

import helpers
import manygil

pytest.importorskip("channels", reason="Django Channels is in requirements-dev.txt")
from channels.exceptions import ChannelFull  # noqa: E402
from websockets.asyncio.client import connect  # noqa: E402

from manygil.channels import SharedChannelLayer  # noqa: E402
from served import Served  # noqa: E402


def run(coro, limit: float = 60):
    return asyncio.run(asyncio.wait_for(coro, limit))


# -- Channel.recv_async ---------------------------------------------------------------------------


def test_recv_async_waits_without_blocking_the_loop_for_a_message_from_a_worker():
    channel = manygil.Channel()

    async def go():
        ticks = 0

        async def tick():
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0.01)

        ticker = asyncio.create_task(tick())
        with manygil.Pool(1) as pool:
            sent = pool.submit(helpers.send_after, channel, 0.3, {"from": "worker", "n": [1, 2]})
            got = await channel.recv_async()
            sent.result()
        ticker.cancel()
        return got, ticks

    got, ticks = run(go())
    assert got == {"from": "worker", "n": [1, 2]}
    assert ticks > 1  # the loop ran other tasks while the receive waited


def test_recv_async_timeout_close_and_bad_timeout():
    channel = manygil.Channel()

    async def go():
        with pytest.raises(manygil.ChannelEmpty):
            await channel.recv_async(timeout=0.05)
        with pytest.raises(ValueError, match="timeout"):
            await channel.recv_async(timeout=-1)
        channel.send("queued")
        assert await channel.recv_async(timeout=0) == "queued"  # already there: no wait
        channel.send("last")
        channel.close()
        assert await channel.recv_async() == "last"  # drained first
        with pytest.raises(manygil.ChannelClosed):
            await channel.recv_async()

    run(go())


def test_close_wakes_a_waiting_receive():
    channel = manygil.Channel()

    async def go():
        threading.Timer(0.1, channel.close).start()
        with pytest.raises(manygil.ChannelClosed):
            await channel.recv_async()

    run(go())


def test_a_cancelled_receive_takes_nothing():
    channel = manygil.Channel()

    async def go():
        waiting = asyncio.create_task(channel.recv_async())
        await asyncio.sleep(0.05)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        channel.send("for the next receiver")
        return await channel.recv_async(timeout=10)

    assert run(go()) == "for the next receiver"
    assert len(channel) == 0


def test_loops_in_two_workers_share_one_channel_each_message_once():
    channel = manygil.Channel()
    with manygil.Pool(2) as pool:
        receivers = [pool.submit(helpers.async_receive_until_none, channel) for _ in range(2)]
        for i in range(400):
            channel.send(i)
        for _ in receivers:
            channel.send(None)
        got = [r.result(timeout=60) for r in receivers]
    assert sorted(got[0] + got[1]) == list(range(400))
    assert all(r == sorted(r) for r in got)  # each receiver sees its share in order


def test_many_waits_in_one_loop_use_one_descriptor():
    channels = [manygil.Channel() for _ in range(300)]

    async def go():
        before = len(os.listdir("/proc/self/fd"))  # this loop's own (epoll, self-pipe) included
        waits = [asyncio.create_task(c.recv_async()) for c in channels]
        await asyncio.sleep(0.05)
        during = len(os.listdir("/proc/self/fd"))

        def sender():
            for i, c in reversed(list(enumerate(channels))):
                c.send(i)

        threading.Thread(target=sender).start()
        return await asyncio.gather(*waits), before, during

    got, before, during = run(go())
    assert got == list(range(300))
    assert during <= before + 1  # one eventfd for the loop, not one per wait


# -- SharedChannelLayer ---------------------------------------------------------------------------


def test_send_receive_new_channel_and_capacity():
    layer = SharedChannelLayer(name="t-basic", capacity=3)

    async def go():
        a, b = await layer.new_channel(), await layer.new_channel()
        assert a != b
        assert layer.require_valid_channel_name(a)
        await layer.send(a, {"type": "hello", "n": 1, "blob": b"\x00\xff"})
        assert await layer.receive(a) == {"type": "hello", "n": 1, "blob": b"\x00\xff"}
        for i in range(3):
            await layer.send(b, {"type": "x", "i": i})
        with pytest.raises(ChannelFull):
            await layer.send(b, {"type": "x", "i": 3})
        assert [(await layer.receive(b))["i"] for _ in range(3)] == [0, 1, 2]
        with pytest.raises(TypeError, match="lock"):  # what cannot be copied is refused, naming it
            await layer.send(a, {"type": "bad", "obj": threading.Lock()})
        with pytest.raises(TypeError):
            await layer.send("not a valid name!?", {"type": "x"})
        await layer.send(a, {"type": "still usable"})
        assert (await layer.receive(a))["type"] == "still usable"

    run(go())


def test_groups_add_send_discard_and_full_members_skipped():
    layer = SharedChannelLayer(name="t-groups", capacity=1)

    async def go():
        names = [await layer.new_channel() for _ in range(3)]
        for n in names:
            await layer.group_add("room", n)
        await layer.group_send("room", {"type": "one"})
        assert [(await layer.receive(n))["type"] for n in names] == ["one"] * 3
        await layer.group_discard("room", names[0])
        await layer.group_discard("room", "never.joined")
        await layer.group_discard("nobody-here", names[0])
        await layer.send(names[1], {"type": "fills it"})
        await layer.group_send("room", {"type": "two"})  # names[1] is full: skipped, no error
        assert (await layer.receive(names[1]))["type"] == "fills it"
        assert (await layer.receive(names[2]))["type"] == "two"
        for n in names[:2]:
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(layer.receive(n), 0.2)

    run(go())


def test_expired_messages_are_dropped_and_flush_forgets_everything():
    layer = SharedChannelLayer(name="t-expiry", expiry=0.2)

    async def go():
        a = await layer.new_channel()
        await layer.group_add("g", a)
        await layer.send(a, {"type": "old"})
        await asyncio.sleep(0.3)
        await layer.send(a, {"type": "new"})
        assert (await layer.receive(a))["type"] == "new"
        await layer.group_send("g", {"type": "after"})  # the expired message took a out of its group
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(layer.receive(a), 0.1)
        await layer.group_add("g", a)
        await layer.send(a, {"type": "flushed"})
        await layer.flush()
        await layer.group_send("g", {"type": "nobody"})
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(layer.receive(a), 0.1)

    run(go())


def test_layers_of_different_names_are_apart_and_bad_options_are_refused():
    one, two = SharedChannelLayer(name="t-one"), SharedChannelLayer(name="t-two")

    async def go():
        await one.send("same.name", {"type": "for one"})
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(two.receive("same.name"), 0.1)
        assert (await one.receive("same.name"))["type"] == "for one"

    run(go())
    with pytest.raises(ValueError, match="expiry"):
        SharedChannelLayer(expiry=0)


def test_a_worker_receives_what_main_and_a_group_send_give_it():
    layer = SharedChannelLayer(name="t-cross")

    async def go(pool):
        name = await layer.new_channel()
        await layer.group_add("workers", name)
        receiving = pool.submit(helpers.layer_receive, "t-cross", name, 2)
        await layer.send(name, {"type": "direct", "n": 1})
        await layer.group_send("workers", {"type": "group", "n": 2})
        return await asyncio.wrap_future(receiving)

    with manygil.Pool(1) as pool:
        got = run(go(pool))
    assert got == [{"type": "direct", "n": 1}, {"type": "group", "n": 2}]


# -- a Channels chat under manygil serve -----------------------------------------------------------


def test_a_channels_chat_broadcasts_to_consumers_in_every_worker():
    # Async and sync consumers alike (a sync consumer calls the layer and the ASGI send through
    # async_to_sync, which would warn if send were not marked as a coroutine function).
    with Served("serve_apps.channels_chat:application", "--workers", "2") as served:
        urls = [f"ws://{served.host}:{served.port}/ws/", f"ws://{served.host}:{served.port}/ws/sync/"]

        async def go():
            clients, workers = [], set()
            for i in range(12):  # the front end spreads connections over both workers
                ws = await connect(urls[i % 2])
                workers.add(json.loads(await ws.recv())["worker"])
                clients.append(ws)
            await clients[0].send(json.dumps({"text": "hello all"}))
            heard = [json.loads(await ws.recv()) for ws in clients]
            for ws in clients[6:]:
                await ws.close()
            await asyncio.sleep(0.2)  # their consumers' disconnect (group_discard) runs
            await clients[5].send(json.dumps({"text": "second"}))
            heard_again = [json.loads(await ws.recv()) for ws in clients[:6]]
            for ws in clients[:6]:
                await ws.close()
            return workers, heard, heard_again

        workers, heard, heard_again = run(go())
        log = "".join(served.lines)
        assert "Warning" not in log and "Traceback" not in log, log
        assert len(workers) == 2
        assert [h["text"] for h in heard] == ["hello all"] * 12
        assert [h["text"] for h in heard_again] == ["second"] * 6
