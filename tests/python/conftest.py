import os
import subprocess
import sys
import textwrap

import pytest

import manygil


@pytest.fixture
def pool():
    p = manygil.Pool(2)
    yield p
    p.shutdown(wait=True, cancel_futures=True)


@pytest.fixture(scope="module")
def module_pool():
    """One two-worker pool for a whole test module (the DuckDB tests register many UDFs on it)."""
    with manygil.Pool(2) as p:
        yield p


@pytest.fixture
def pipe():
    """A pipe whose write end unblocks tasks waiting in helpers.block_on(read_fd)."""
    r, w = os.pipe()
    yield r, w
    os.close(r)
    os.close(w)


@pytest.fixture
def blocked_task():
    """start(pool) submits a task that blocks its worker and returns once the task is running;
    release() lets it finish (it returns b"r")."""

    class Blocked:
        def __init__(self):
            self.started_r, self.started_w = os.pipe()
            self.go_r, self.go_w = os.pipe()

        def start(self, pool):
            import helpers

            future = pool.submit(helpers.started_then_block, self.started_w, self.go_r)
            assert os.read(self.started_r, 1) == b"s"
            return future

        def release(self):
            os.write(self.go_w, b"r")

    blocked = Blocked()
    yield blocked
    for fd in (blocked.started_r, blocked.started_w, blocked.go_r, blocked.go_w):
        os.close(fd)


@pytest.fixture
def run_python(tmp_path):
    """Runs Python code in a fresh interpreter process: as a script file, with -c, on stdin, or typed
    at the interactive prompt (mode="repl")."""

    def run(code, mode="script", timeout=120):
        code = textwrap.dedent(code)
        # The tests' modules first, then what the suite itself runs with (make test's DuckDB 1.x run).
        path = [os.path.dirname(__file__)] + ([os.environ["PYTHONPATH"]] if os.environ.get("PYTHONPATH") else [])
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(path))
        if mode == "script":
            script = tmp_path / "main_script.py"
            script.write_text(code)
            cmd, stdin = [sys.executable, str(script)], None
        elif mode == "-c":
            cmd, stdin = [sys.executable, "-c", code], None
        elif mode == "repl":  # the interactive prompt, fed through a pipe
            cmd, stdin = [sys.executable, "-i", "-q"], code
        else:
            cmd, stdin = [sys.executable, "-"], code
        return subprocess.run(cmd, input=stdin, capture_output=True, text=True, timeout=timeout, env=env,
                              cwd=tmp_path)

    return run
