"""manygil.actor: an object in its own interpreter, reached through its methods, calls in order."""

import asyncio
import concurrent.futures as cf

import pytest

import helpers
import manygil


def test_calls_run_in_order_and_keep_state():
    with manygil.actor(helpers.Counter, 10) as counter:
        futures = [counter.add(i) for i in range(1, 101)]
        assert all(isinstance(f, cf.Future) for f in futures)
        assert [f.result(timeout=60) for f in futures][-1] == 10 + sum(range(1, 101))
        assert counter.history().result() == list(range(1, 101))  # in call order


def test_lives_in_another_interpreter():
    with manygil.actor(helpers.Counter) as counter:
        counter.wait_created()
        assert helpers.in_main_interpreter()
        # its methods run where the object is; our process-side module state is untouched
        assert counter.add(1).result() == 1


def test_attributes_are_reachable_only_through_methods():
    with manygil.actor(helpers.Counter) as counter:
        with pytest.raises(AttributeError, match="reachable only through its methods"):
            counter.value
        with pytest.raises(AttributeError):
            counter.no_such_method


def test_exceptions_propagate_and_the_actor_goes_on():
    with manygil.actor(helpers.Counter) as counter:
        with pytest.raises(ValueError, match="bad"):
            counter.fail("bad").result()
        assert counter.add(2).result() == 2


def test_constructor_error_surfaces():
    with manygil.actor(helpers.BrokenOnCreate) as broken:
        with pytest.raises(RuntimeError, match="cannot build"):
            broken.wait_created()
        with pytest.raises(RuntimeError, match="constructor raised"):  # calls fail clearly, never hang
            broken.ping().result(timeout=60)


def test_asyncio():
    async def main():
        with manygil.actor(helpers.Counter) as counter:
            a = await counter.add.run(5)
            b = await asyncio.wrap_future(counter.add(6))
            return a, b

    assert asyncio.run(main()) == (5, 11)


def test_close_is_final():
    counter = manygil.actor(helpers.Counter)
    counter.close()
    counter.close()
    with pytest.raises(RuntimeError):
        counter.add(1)
    with pytest.raises(TypeError, match="needs a class"):
        manygil.actor(helpers.square)
