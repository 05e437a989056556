"""The typed Python API: _core's stub matches the built module (mypy's stubtest), and a typed use of
the public API passes mypy --strict (and runs)."""

import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def run(*args, cwd=HERE):
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=600, cwd=cwd)


def test_the_core_stub_matches_the_extension():
    proc = run("-m", "mypy.stubtest", "manygil._core")
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_a_typed_use_of_the_public_api_passes_mypy_strict(tmp_path):
    proc = run("-m", "mypy", "--strict", "--no-incremental", "--cache-dir", str(tmp_path), "typed_usage.py")
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_the_typed_use_runs():
    import typed_usage

    assert typed_usage.main() == [9, 285, 16, 25, 2, 2, b"\x07", True, 36, 15, "BrokenPool", 49, 4]
