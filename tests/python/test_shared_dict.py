"""manygil.SharedDict from Python: the mapping against a dict, every worker writing the same keys with
no update lost, readers while writers grow it, the budget and time to live, bad keys and values, and a
script that uses it as users write one."""

import pickle
import random
import subprocess
import sys
import textwrap
import time
import uuid

import pytest

import manygil
import shared_dict_tasks as tasks
from manygil import NotShareableError, SharedDict


def fresh_name():
    return f"test-{uuid.uuid4().hex}"


def test_it_behaves_as_a_dict_under_random_operations():
    d, ref = SharedDict(), {}
    rng = random.Random(7)
    keys = ["a", "b", 1, 2.5, ("t", 1), b"raw", None, (1, (2, "x"))]  # no True: a dict takes it for 1
    for _ in range(3000):
        key = rng.choice(keys)
        op = rng.randrange(6)
        if op == 0:
            value = rng.choice([1, "v", [1, 2], {"k": (1.5, None)}, b"\x00", -(2**70)])
            d[key], ref[key] = value, value
        elif op == 1:
            assert d.get(key, "missing") == ref.get(key, "missing")
        elif op == 2:
            assert d.pop(key, "missing") == ref.pop(key, "missing")
        elif op == 3:
            assert d.setdefault(key, 7) == ref.setdefault(key, 7)
        elif op == 4:
            assert (key in d) == (key in ref)
        else:
            if key in ref:
                del d[key]
                del ref[key]
            else:
                with pytest.raises(KeyError):
                    del d[key]
        assert len(d) == len(ref)
    assert sorted(map(repr, d.keys())) == sorted(map(repr, ref.keys()))
    assert sorted(map(repr, d.items())) == sorted(map(repr, ref.items()))
    assert sorted(map(repr, d)) == sorted(map(repr, ref))


def test_keys_are_compared_by_type_and_value():
    d = SharedDict()
    d[1], d[1.0], d[True] = "int", "float", "bool"
    assert (d[1], d[1.0], d[True], len(d)) == ("int", "float", "bool", 3)


def test_reads_return_new_objects():
    d = SharedDict()
    d["k"] = [1, 2]
    got = d["k"]
    got.append(3)
    assert d["k"] == [1, 2]
    assert d["k"] is not d["k"]


def test_bad_keys_and_values_are_refused_and_change_nothing():
    d = SharedDict()

    class Text(str):
        pass

    for key in ([1], {"a": 1}, Text("x"), object(), ("ok", [1])):
        with pytest.raises(NotShareableError, match="SharedDict key"):
            d[key] = 1
        with pytest.raises(NotShareableError):
            d.get(key)
    for value in (object(), Text("x"), {"k": object()}, lambda: 1):
        with pytest.raises(NotShareableError):
            d["k"] = value
    with pytest.raises(NotShareableError):
        d.update({"a": 1, "b": object()})
    assert len(d) == 0
    with pytest.raises(ValueError, match="ttl"):
        d.set("k", 1, ttl=0)
    with pytest.raises(TypeError, match="cannot be pickled"):
        pickle.dumps(d)
    with pytest.raises(ValueError, match="max_bytes"):
        SharedDict(max_bytes=-1)


def test_incr_and_its_errors():
    d = SharedDict()
    with pytest.raises(KeyError):
        d.incr("n")
    assert d.incr("n", initial=10) == 11
    assert d.incr("n", -20) == -9
    d["s"] = "text"
    with pytest.raises(TypeError, match="not an int"):
        d.incr("s")
    d["max"] = 2**63 - 1
    with pytest.raises(ValueError, match="overflows"):
        d.incr("max")
    with pytest.raises(OverflowError):
        d.incr("n", 2**64)


def test_update_is_all_or_nothing_and_takes_pairs_and_keywords():
    d = SharedDict()
    d.update({"a": 1}, b=2)
    d.update([("c", 3)], ttl=60)
    assert sorted(d.items()) == [("a", 1), ("b", 2), ("c", 3)]
    with pytest.raises(NotShareableError):
        d.update([("a", 10), ([], 11)])
    with pytest.raises(ValueError, match="3 elements"):
        d.update([("a", 10, 1)])
    assert d["a"] == 1


def test_keys_expire_after_their_ttl():
    d = SharedDict()
    d.set("short", 1, ttl=0.05)
    d.set("long", 2, ttl=3600)
    d.set("touched", 3, ttl=0.05)
    assert d.touch("touched", None)
    assert d["short"] == 1
    time.sleep(0.3)  # well past 50 ms
    assert "short" not in d
    assert d.get("short") is None
    assert not d.touch("short", 10)
    assert (d["long"], d["touched"], len(d)) == (2, 3, 2)
    assert d.stats()["expirations"] == 1


def test_the_budget_evicts_and_oversized_values_are_refused(pool):
    name = fresh_name()
    cache = SharedDict.named(name, max_bytes=200_000)
    cache["hot"] = "kept"
    used = pool.map(tasks.fill, [name, name], ["a", "b"], [2000, 2000], [1000, 1000])
    # Each worker read the size right after its last write, while the other may have been between a
    # write and its eviction: over the budget by at most that one value in flight.
    assert all(u <= 200_000 + 2_000 for u in used)
    stats = cache.stats()
    assert stats["bytes"] <= stats["max_bytes"] == 200_000
    assert stats["evictions"] > 3000
    assert len(cache) < 200
    with pytest.raises(ValueError, match="exceed the SharedDict's max_bytes of 200000"):
        cache["huge"] = b"x" * 300_000
    assert "huge" not in cache
    with pytest.raises(ValueError, match="max_bytes=200000, not 5"):
        SharedDict.named(name, max_bytes=5)


def test_no_update_is_lost_when_every_worker_increments_the_same_keys():
    name = fresh_name()
    keys = ["hits", ("page", 1), 42]
    with manygil.Pool(4) as pool:
        done = sum(pool.map(tasks.increment, [name] * 8, [keys] * 8, [1500] * 8))
    d = SharedDict.named(name)
    assert done == 8 * 1500 * 3
    assert [d[k] for k in keys] == [8 * 1500] * 3


def test_compare_and_set_loops_lose_nothing(pool):
    name = fresh_name()
    d = SharedDict.named(name)
    d["log"] = ()
    futures = [pool.submit(tasks.append_by_compare_and_set, name, "log", tag, 300) for tag in ("a", "b")]
    futures.append(pool.submit(tasks.append_by_compare_and_set, name, "log", "main-side", 0))
    tasks.append_by_compare_and_set(name, "log", "main", 300)
    for f in futures:
        f.result()
    log = d["log"]
    assert len(log) == 900
    for tag in ("a", "b", "main"):
        assert [i for t, i in log if t == tag] == list(range(300))  # each writer's in order, none twice
    assert not d.compare_and_set("absent", None, 1)


def test_readers_see_whole_values_while_writers_grow_the_store(pool):
    name = fresh_name()
    d = SharedDict.named(name)
    keys = list(range(50))
    for k in keys:
        d[k] = {"key": k, "square": k * k}
    readers = [pool.submit(tasks.read_while_written, name, keys, "stop") for _ in range(2)]
    for i in range(20_000):  # rehashes every shard, many times
        d[("filler", i)] = [i] * 5
    d["stop"] = True
    for f in readers:
        reads, wrong = f.result()
        assert reads > 0 and wrong == 0


def test_shared_buffers_are_stored_by_reference(pool):
    name = fresh_name()
    buf = manygil.SharedBuffer(16)
    SharedDict.named(name)["buf"] = buf
    assert pool.submit(tasks.write_into_buffer, name, "buf", b"from a worker").result() == 13
    assert bytes(buf)[:13] == b"from a worker"


def test_a_script_shares_one_dict_across_its_workers(tmp_path):
    """As users write it: the task function in the script itself, the dict found by name."""
    script = tmp_path / "counter_script.py"
    script.write_text(textwrap.dedent("""
        import multiprocessing
        from concurrent.futures import as_completed

        import manygil

        def count_words(text):
            counts = manygil.SharedDict.named("word-counts")
            for word in text.split():
                counts.incr(word, initial=0)
            return len(text.split())

        if __name__ == "__main__":
            texts = ["a b c a", "b c d", "a a a"] * 50
            with manygil.Pool(2) as pool:
                total = sum(f.result() for f in as_completed([pool.submit(count_words, t) for t in texts]))
            counts = manygil.SharedDict.named("word-counts")
            print(total, sorted(counts.items()))
    """))
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "500 [('a', 250), ('b', 100), ('c', 100), ('d', 50)]"


def test_it_travels_by_reference_to_workers_through_channels_and_inside_other_dicts(pool):
    d = SharedDict()
    assert pool.submit(tasks.incr_given, d, "k", 5).result() == 5
    assert d["k"] == 5
    back = pool.submit(tasks.identity, d).result()
    assert back == d and back is not d  # a new wrapper of the same store
    channel = manygil.Channel()
    channel.send(d)
    assert channel.recv() == d
    outer = SharedDict()
    outer["inner"] = d
    assert outer["inner"]["k"] == 5
