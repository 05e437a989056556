"""CPython's own concurrent.futures executor tests (test.test_concurrent_futures, shipped with the
CPython the tests run on), run against manygil.Pool as they run against ThreadPoolExecutor.

Skipped, and why:
- the tests that start a new Python with `from concurrent.futures import <executor class name>`
  (test_interpreter_shutdown, test_submit_after_interpreter_shutdown, test_hang_gh83386): Pool is
  not in concurrent.futures. tests/python/test_shutdown.py checks the same behaviours for Pool.
"""

import pytest

test_support = pytest.importorskip("test.support", reason="this CPython was installed without its test package")
pytest.importorskip("test.test_concurrent_futures", reason="this CPython has no test.test_concurrent_futures")

# CPython's tests use resources only when told to: "walltime" for the timing tests, never the network.
test_support.use_resources = ["walltime"]

from test.test_concurrent_futures import executor, test_as_completed, test_init, test_shutdown, test_wait  # noqa: E402
from test.test_concurrent_futures.util import BaseTestCase, ExecutorMixin  # noqa: E402

import manygil  # noqa: E402

NAMED_IN_CONCURRENT_FUTURES = "imports the executor from concurrent.futures by its class name; Pool is not there"


class ManygilPoolMixin(ExecutorMixin):
    executor_type = manygil.Pool

    def create_event(self):
        return manygil.Event()  # what tasks in other interpreters can wait on, like threading.Event in threads


class ManygilPoolExecutorTest(ManygilPoolMixin, executor.ExecutorTest, BaseTestCase):
    pass


class ManygilPoolAsCompletedTest(ManygilPoolMixin, test_as_completed.AsCompletedTests, BaseTestCase):
    pass


class ManygilPoolWaitTest(ManygilPoolMixin, test_wait.WaitTests, BaseTestCase):
    pass


class ManygilPoolInitializerTest(test_init.InitializerMixin, ManygilPoolMixin, BaseTestCase):
    pass


class ManygilPoolFailingInitializerTest(test_init.FailingInitializerMixin, ManygilPoolMixin, BaseTestCase):
    pass


class ManygilPoolShutdownTest(ManygilPoolMixin, test_shutdown.ExecutorShutdownTest, BaseTestCase):
    @pytest.mark.skip(reason=NAMED_IN_CONCURRENT_FUTURES)
    def test_interpreter_shutdown(self):
        pass

    @pytest.mark.skip(reason=NAMED_IN_CONCURRENT_FUTURES)
    def test_submit_after_interpreter_shutdown(self):
        pass

    @pytest.mark.skip(reason=NAMED_IN_CONCURRENT_FUTURES)
    def test_hang_gh83386(self):
        pass
