"""Channel.recv_async and send_async (asyncio waits on a manygil.Channel, woken from any thread or
interpreter) and
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
        ticks = helpers.LoopTicks().start()
        with manygil.Pool(1) as pool:
            sent = pool.submit(helpers.send_after, channel, 0.3, {"from": "worker", "n": [1, 2]})
            got = await channel.recv_async()
            sent.result()
        return got, ticks.stop()

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


# -- Channel.send_async ---------------------------------------------------------------------------


def test_send_async_from_the_main_loop_waits_for_room_made_by_a_worker():
    channel = manygil.Channel(maxsize=2)
    channel.send("a")
    channel.send("b")

    async def go():
        ticks = helpers.LoopTicks().start()
        with manygil.Pool(1) as pool:
            drained = pool.submit(helpers.recv_after, channel, 0.3, 5)
            for item in "cde":
                await channel.send_async(item)
            got = drained.result(timeout=60)
        return got, ticks.stop()

    got, ticks = run(go())
    assert got == list("abcde")
    assert ticks > 1  # the loop ran other tasks while the send waited for room


def test_send_async_from_a_workers_loop_into_a_channel_the_main_interpreter_empties():
    channel = manygil.Channel(maxsize=1)
    with manygil.Pool(1) as pool:
        sending = pool.submit(helpers.async_send_all, channel, list(range(200)))
        got = [channel.recv(timeout=60) for _ in range(200)]
        ticks = sending.result(timeout=60)
    assert got == list(range(200))
    assert ticks >= 1
    assert len(channel) == 0


def test_send_async_timeout_unbounded_and_bad_input():
    channel = manygil.Channel(maxsize=1)

    async def go():
        await channel.send_async("first", timeout=0)  # room: no wait
        with pytest.raises(manygil.ChannelFull):  # what send(timeout=) raises
            await channel.send_async("late", timeout=0.05)
        with pytest.raises(manygil.ChannelFull):
            await channel.send_async("late", timeout=0)
        with pytest.raises(ValueError, match="timeout"):
            await channel.send_async("x", timeout=-1)
        assert channel.recv_nowait() == "first" and len(channel) == 0  # the timed-out sends put nothing
        with pytest.raises(type(_send_error(channel))):  # what send_nowait raises for an object it cannot copy
            await channel.send_async(threading.Lock())
        assert len(channel) == 0

        unbounded = manygil.Channel()
        for i in range(1000):
            await unbounded.send_async(i, timeout=0)  # never full: send_nowait
        assert len(unbounded) == 1000
        unbounded.close()
        with pytest.raises(manygil.ChannelClosed):
            await unbounded.send_async("after close")

    run(go())


def _send_error(channel):
    try:
        channel.send_nowait(threading.Lock())
    except Exception as e:  # noqa: BLE001 - the test compares the type send_async raises
        return e
    raise AssertionError("a threading.Lock was sent")


def test_a_cancelled_send_puts_nothing_and_leaves_no_watch():
    from manygil import _aio

    channel = manygil.Channel(maxsize=1)
    channel.send("there")

    async def go():
        waiting = asyncio.create_task(channel.send_async("cancelled"))
        await asyncio.sleep(0.05)
        assert not waiting.done()
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        waker = _aio._wakers[asyncio.get_running_loop()]
        assert waker.waits == {}
        # No await from here: a watch still armed would mark its token ready at this receive, on
        # this thread, before the loop could take it.
        assert channel.recv_nowait() == "there"
        assert waker.waker.take_ready() == ()
        assert len(channel) == 0  # nothing was put
        await channel.send_async("next", timeout=10)
        return channel.recv_nowait()

    assert run(go()) == "next"
    assert len(channel) == 0


def test_close_wakes_a_waiting_send_with_channel_closed():
    channel = manygil.Channel(maxsize=1)
    channel.send("there")

    async def go():
        threading.Timer(0.1, channel.close).start()
        with pytest.raises(manygil.ChannelClosed):
            await channel.send_async("never")

    run(go())
    assert channel.recv_nowait() == "there"  # receivers drain what was queued, and only that
    with pytest.raises(manygil.ChannelClosed):
        channel.recv_nowait()


def test_many_sends_waiting_on_one_loop_each_deliver_once():
    channel = manygil.Channel(maxsize=1)
    received = []

    def drain():
        for _ in range(100):
            received.append(channel.recv(timeout=60))

    async def go():
        before = len(os.listdir("/proc/self/fd"))
        sends = [asyncio.create_task(channel.send_async(i)) for i in range(100)]
        await asyncio.sleep(0.05)
        during = len(os.listdir("/proc/self/fd"))
        drainer = threading.Thread(target=drain)
        drainer.start()
        await asyncio.gather(*sends)
        await asyncio.to_thread(drainer.join)
        return before, during

    before, during = run(go())
    assert sorted(received) == list(range(100))
    assert during <= before + 1  # one eventfd for the loop, not one per wait
    assert len(channel) == 0


def test_loops_in_two_workers_race_for_one_slot_each_item_delivered_once():
    channel = manygil.Channel(maxsize=1)
    with manygil.Pool(2) as pool:
        senders = [pool.submit(helpers.async_send_all, channel, [(w, i) for i in range(300)]) for w in range(2)]
        got = [channel.recv(timeout=60) for _ in range(600)]
        for s in senders:
            s.result(timeout=60)
    assert sorted(got) == [(w, i) for w in range(2) for i in range(300)]  # none lost, none twice
    for w in range(2):
        assert [i for (x, i) in got if x == w] == list(range(300))  # each loop's items in its order
    assert len(channel) == 0


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


def test_an_expired_message_takes_its_channel_out_of_exactly_its_groups():
    layer = SharedChannelLayer(name="t-index", expiry=0.2, capacity=100)
    groups = [f"g{i}" for i in range(50)]

    async def go():
        a, b, c = [await layer.new_channel() for _ in range(3)]
        for g in groups:
            await layer.group_add(g, b)  # b stays in all 50
        await layer.group_add("g7", a)
        await layer.group_add("g31", a)
        await layer.group_add("g40", a)
        await layer.group_discard("g40", a)  # left: its index forgets g40
        await layer.group_discard("g41", a)  # never joined: nothing changes
        assert set(layer._store.get(("i", a))) == {"g7", "g31"}
        await layer.group_add("g7", c)
        await layer.group_discard("g7", c)
        assert layer._store.get(("i", c)) == {}  # left its only group
        await layer.group_discard("g1", "never.joined.anything")
        assert layer._store.get(("i", "never.joined.anything")) is None  # no index made for it

        await layer.send(a, {"type": "old"})
        await asyncio.sleep(0.3)
        await layer.send(a, {"type": "new"})
        assert (await layer.receive(a))["type"] == "new"  # the expired one took a out of g7 and g31
        assert not layer._store.get(("i", a))
        for g in groups:
            assert set(layer._store.get(("g", g))) == {b}, g
        for g in groups:
            await layer.group_send(g, {"type": "to", "g": g})
        assert [(await layer.receive(b))["g"] for _ in groups] == groups  # b is in every group still
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
