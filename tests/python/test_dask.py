"""Dask's local schedulers on a manygil Pool (issue 16, point 1): `dask.compute(..., scheduler=pool)`
passes tasks as they are, `scheduler="processes", pool=pool` cloudpickles them; both size themselves
from the executor's `_max_workers`. Results must equal the synchronous scheduler's, and exceptions come
back with their type."""

from __future__ import annotations

import pytest

import manygil

dask = pytest.importorskip("dask")
import dask.bag as db  # noqa: E402
from dask import delayed  # noqa: E402


def spin(n: int) -> int:
    total = 0
    for i in range(n):
        total += i * i % 7
    return total


def fails(x: int) -> int:
    raise ValueError(f"task {x} failed on purpose")


def graph():
    parts = [delayed(spin)(20_000 + i) for i in range(6)]
    return delayed(sum)(parts), delayed(max)(parts)


@pytest.fixture(scope="module")
def pool():
    with manygil.Pool(2) as p:
        yield p


@pytest.mark.parametrize("how", ["executor", "processes"])
def test_delayed_graphs_match_the_synchronous_scheduler(pool, how):
    expected = dask.compute(*graph(), scheduler="sync")
    kwargs = {"scheduler": pool} if how == "executor" else {"scheduler": "processes", "pool": pool}
    assert dask.compute(*graph(), **kwargs) == expected
    done = sum(w["tasks_done"] for w in pool.stats()["workers"])
    assert done > 0  # the work ran in the pool's interpreters


@pytest.mark.parametrize("how", ["executor", "processes"])
def test_bag_pipelines_match_the_synchronous_scheduler(pool, how):
    def pipeline():
        words = ["alpha beta", "gamma alpha", "beta beta delta"] * 20
        bag = db.from_sequence(words, npartitions=6).map(str.split).flatten()
        return bag.frequencies(sort=True), bag.map(len).filter(lambda n: n > 4).sum()

    expected = dask.compute(*pipeline(), scheduler="sync")
    kwargs = {"scheduler": pool} if how == "executor" else {"scheduler": "processes", "pool": pool}
    assert dask.compute(*pipeline(), **kwargs) == expected


@pytest.mark.parametrize("how", ["executor", "processes"])
def test_exceptions_come_back_with_their_type(pool, how):
    kwargs = {"scheduler": pool} if how == "executor" else {"scheduler": "processes", "pool": pool}
    with pytest.raises(ValueError, match="task 3 failed on purpose"):
        dask.compute(delayed(fails)(3), **kwargs)
    assert dask.compute(delayed(spin)(10), **kwargs) == (spin(10),)  # the pool goes on


def test_dask_sizes_itself_from_the_pool():
    with manygil.Pool(3) as pool:
        assert pool._max_workers == 3
        assert dask.compute(*graph(), scheduler=pool) == dask.compute(*graph(), scheduler="sync")
