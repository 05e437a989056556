"""Crash notes (Runtime::note_jobs_on_fatal_signals, issue 23): a fatal signal in a worker writes
which worker and job it hit, then the handler installed before (faulthandler here) still runs and
the process still dies of it. Each crash in a child process."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap

import pytest

MODULE = textwrap.dedent('''
    import ctypes
    import os


    def segfault():
        ctypes.string_at(0)


    def abort():
        os.abort()


    def fine():
        return 1
''')


def crash(tmp_path, body: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "crashmod.py").write_text(MODULE)
    script = textwrap.dedent('''
        import faulthandler
        import manygil
        from manygil import _core
        import crashmod

        faulthandler.enable()
        _core._note_jobs_on_fatal_signals()
        _core._note_jobs_on_fatal_signals()  # idempotent: one line per crash, not two
    ''') + textwrap.dedent(body)
    return subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True,
                          timeout=120)


def died_of(result: subprocess.CompletedProcess[str], sig: int) -> bool:
    # Under `make sanitize` ASan's handler may take a SIGSEGV over and exit with status 1.
    return result.returncode == -sig or (sig == signal.SIGSEGV and result.returncode == 1)


@pytest.mark.parametrize("task, sig", [("segfault", signal.SIGSEGV), ("abort", signal.SIGABRT)])
def test_a_crash_in_a_worker_names_the_worker_and_its_job(tmp_path, task, sig):
    result = crash(tmp_path, f'''
        with manygil.Pool(2, thread_name_prefix="crashpool") as pool:
            assert pool.submit(crashmod.fine).result() == 1
            pool.submit(crashmod.{task}).result()
    ''')
    assert died_of(result, sig), (result.returncode, result.stderr)
    notes = [line for line in result.stderr.splitlines() if line.startswith("manygil: fatal")]
    assert len(notes) == 1, result.stderr
    assert notes[0].startswith(f"manygil: fatal {signal.Signals(sig).name} in crashpool worker "), notes
    assert notes[0].endswith(f" while running crashmod:{task}"), notes
    if sig == signal.SIGSEGV and result.returncode != 1:
        # faulthandler, installed before, still reports the Python stack after the note.
        after = result.stderr.split(notes[0], 1)[1]
        assert "Fatal Python error: Segmentation fault" in after and "crashmod.py" in after, result.stderr


def test_a_crash_outside_any_worker_says_so(tmp_path):
    result = crash(tmp_path, '''
        with manygil.Pool(1) as pool:
            assert pool.submit(crashmod.fine).result() == 1
        crashmod.segfault()
    ''')
    assert died_of(result, signal.SIGSEGV), (result.returncode, result.stderr)
    assert "manygil: fatal SIGSEGV outside any manygil worker's job" in result.stderr, result.stderr
