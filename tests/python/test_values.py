"""Arguments and results: native values without pickle, others through pickle, clear refusals."""

import threading

import pytest

import helpers
import manygil

NATIVE = [None, True, 0, -5, 2**100, -(2**70), 1.5, float("inf"), "", "héllo", b"\x00\xff", (), (1, "a"),
          [1, [2, [3]]], {"k": [1, 2], 3: (4,)}, {(1, 2): None}]


@pytest.mark.parametrize("value", NATIVE, ids=repr)
def test_native_values_round_trip(pool, value):
    assert pool.submit(helpers.identity, value).result() == value


def test_native_types_arrive_as_themselves(pool):
    assert pool.submit(helpers.kinds, None, True, 1, 2**80, 1.0, "s", b"b", (), [], {}).result() == [
        "NoneType", "bool", "int", "int", "float", "str", "bytes", "tuple", "list", "dict"]


def test_other_types_travel_by_pickle(pool):
    import decimal
    import fractions

    for value in [{1, 2}, frozenset("ab"), decimal.Decimal("1.10"), fractions.Fraction(1, 3), helpers.Point(1, 2),
                  bytearray(b"xy"), range(3), [helpers.Point(0, 1)]]:
        assert pool.submit(helpers.identity, value).result() == value


def test_unshareable_argument_names_type_and_path(pool):
    with pytest.raises(manygil.NotShareableError) as info:
        pool.submit(helpers.identity, 1, {"k": threading.Lock()})
    err = info.value
    assert isinstance(err, TypeError)
    assert err.type_name == "_thread.lock"
    assert err.path == "args[1]['k']"
    assert "args[1]['k']" in str(err) and "_thread.lock" in str(err)
    with pytest.raises(manygil.NotShareableError) as info:
        pool.submit(helpers.add, 1, b=[threading.Lock()])
    assert info.value.path == "kwargs['b'][0]"


def test_pickling_that_mutates_its_container_is_safe(pool):
    items = [1]
    items.append(helpers.ClearsOnPickle(items))
    items.extend(range(100))
    # The list shrinks while it is converted: refused (as for a dict), nothing reads freed memory.
    with pytest.raises(manygil.NotShareableError, match="changed size"):
        pool.submit(helpers.identity, items)
    assert pool.submit(helpers.identity, [1, 2]).result() == [1, 2]
    table = {"a": 1}
    table["b"] = helpers.ClearsOnPickle(table)
    table["c"] = 3
    with pytest.raises(manygil.NotShareableError, match="changed size"):
        pool.submit(helpers.identity, table)


def test_unshareable_result_fails_in_the_caller(pool):
    with pytest.raises(manygil.NotShareableError, match="_thread.lock"):
        pool.submit(helpers.get_lock).result()
    assert pool.submit(helpers.square, 3).result() == 9
