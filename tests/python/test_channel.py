"""manygil.Channel: a queue between interpreters with real wake-ups and close semantics."""

import gc
import queue
import threading

import pytest

import helpers
import manygil
from manygil import Channel, ChannelClosed, ChannelEmpty, ChannelFull


def test_fifo_len_and_maxsize():
    ch = Channel(maxsize=3)
    assert ch.maxsize == 3 and len(ch) == 0
    for x in [1, "two", (3,)]:
        ch.send(x)
    assert len(ch) == 3
    with pytest.raises(ChannelFull):
        ch.send_nowait(4)
    with pytest.raises(ChannelFull):
        ch.send(4, timeout=0.01)
    assert [ch.recv(), ch.recv_nowait(), ch.recv(timeout=1)] == [1, "two", (3,)]
    with pytest.raises(ChannelEmpty):
        ch.recv_nowait()
    with pytest.raises(ChannelEmpty):
        ch.recv(timeout=0.01)


def test_exceptions_fit_queue_handlers_and_bad_arguments():
    assert issubclass(ChannelEmpty, queue.Empty) and issubclass(ChannelFull, queue.Full)
    with pytest.raises(ValueError):
        Channel(maxsize=-1)
    with pytest.raises(ValueError):
        Channel().recv(timeout=-1)
    with pytest.raises(TypeError, match="cannot be pickled"):
        import pickle

        pickle.dumps(Channel())


def test_close_semantics():
    ch = Channel()
    ch.send(1)
    ch.send(2)
    ch.close()
    assert ch.closed
    with pytest.raises(ChannelClosed):
        ch.send(3)
    assert ch.recv() == 1  # receivers drain what is left...
    assert list(ch) == [2]  # ...iteration stops when closed and drained
    with pytest.raises(ChannelClosed):
        ch.recv()
    ch.close()  # idempotent


def test_close_wakes_a_blocked_receiver():
    ch = Channel()
    outcome = []

    def wait():
        try:
            ch.recv()
        except ChannelClosed:
            outcome.append("closed")

    t = threading.Thread(target=wait)
    t.start()
    ch.close()
    t.join(60)
    assert outcome == ["closed"]


def test_values_travel_like_task_arguments():
    ch = Channel()
    buf = manygil.SharedBuffer(8)
    ch.send({"k": [1, 2.5, b"x", None], "buf": buf})
    got = ch.recv()
    assert got["k"] == [1, 2.5, b"x", None]
    assert helpers.buffer_address(got["buf"]) == helpers.buffer_address(buf)  # by reference
    ch.send(lambda x: x + 1)  # pickled by value
    assert ch.recv()(1) == 2
    with pytest.raises(manygil.NotShareableError) as info:
        ch.send([threading.Lock()])
    assert info.value.path == "[0]"


def test_producer_and_consumer_in_two_interpreters(pool):
    ch = Channel(maxsize=16)
    consumer = pool.submit(helpers.drain, ch)
    producer = pool.submit(helpers.produce, ch, 0, 10_000)
    assert producer.result(timeout=120) == 10_000
    ch.close()
    assert consumer.result(timeout=120) == list(range(10_000))


def test_channels_travel_through_tasks_and_channels(pool):
    inbox, outbox = Channel(), Channel()
    carrier = Channel()
    carrier.send(outbox)  # a channel sent through a channel is the same channel
    assert carrier.recv() == outbox
    echo = pool.submit(helpers.echo_doubled, inbox, outbox)
    for i in range(100):
        inbox.send(i)
    inbox.close()
    assert list(outbox) == [2 * i for i in range(100)]
    echo.result(timeout=60)
    reply = Channel()
    waiter = pool.submit(helpers.recv_one, reply)
    pool.submit(helpers.send_one, reply, "woken").result(timeout=60)
    assert waiter.result(timeout=60) == "woken"


def test_four_producers_four_consumers_lose_and_duplicate_nothing():
    total, producers, consumers = 100_000, 4, 4
    ch = Channel(maxsize=1024)
    with manygil.Pool(producers + consumers) as p:
        drains = [p.submit(helpers.drain, ch) for _ in range(consumers)]
        share = total // producers
        sends = [p.submit(helpers.produce, ch, k * share, share) for k in range(producers)]
        assert sum(f.result(timeout=300) for f in sends) == total
        ch.close()
        received = [x for f in drains for x in f.result(timeout=300)]
    assert len(received) == total
    assert sorted(received) == list(range(total))


def test_a_channel_holding_itself_is_freed_with_what_it_holds():
    from manygil import _core

    gc.collect()  # what earlier tests left
    before = _core.live_buffers()
    ch = manygil.Channel()
    ch.send(ch)
    ch.send(manygil.SharedBuffer(64))  # its memory shows whether the queue was freed
    del ch
    gc.collect()
    assert _core.live_buffers() == before


def test_channels_holding_each_other_are_freed():
    from manygil import _core

    gc.collect()  # what earlier tests left
    before = _core.live_buffers()
    a, b = manygil.Channel(), manygil.Channel()
    a.send(b)
    b.send([a, manygil.SharedBuffer(64)])
    del a, b
    gc.collect()
    assert _core.live_buffers() == before


def test_a_channel_reachable_through_another_keeps_its_messages():
    outer, inner = manygil.Channel(), manygil.Channel()
    inner.send(inner)  # a cycle, but reachable from outer's queue
    inner.send("kept")
    outer.send(inner)
    del inner
    gc.collect()
    got = outer.recv(timeout=5)
    assert got.recv(timeout=5) == got and got.recv(timeout=5) == "kept"


def test_channels_passed_between_workers_still_arrive():
    # Reply channels in requests: the usual way of sending channels through channels.
    with manygil.Pool(2) as pool:
        requests = manygil.Channel()
        served = pool.submit(helpers.serve_requests, requests, 20)
        replies = [manygil.Channel() for _ in range(20)]
        for i, reply in enumerate(replies):
            requests.send((i, reply))
        assert [reply.recv(timeout=30) for reply in replies] == [i * i for i in range(20)]
        assert served.result(timeout=30) == 20
