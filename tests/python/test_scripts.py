"""The benchmark scripts run end to end (tiny sizes; their numbers are not checked here)."""

import os
import subprocess
import sys

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def run(*args):
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=300, cwd=ROOT)


def test_executor_overhead_bench_quick():
    result = run("bench/executor_overhead.py", "--quick", "--rounds", "1")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert any("submit().result()" in line and "ratio" in line for line in lines), result.stdout
    assert any("map over" in line and "us/item" in line for line in lines), result.stdout
    assert any("CPU-bound" in line and "speedup" in line for line in lines), result.stdout
    assert any("manygil (first pool)" in line and "ratio to fork" in line for line in lines), result.stdout
    assert any("manygil (second pool)" in line and "ratio to fork" in line for line in lines), result.stdout


def test_data_plane_bench_quick():
    result = run("bench/data_plane.py", "--quick", "--rounds", "1")
    assert result.returncode == 0, result.stderr
    assert "SharedBuffer to a task and back" in result.stdout, result.stdout
    assert "Channel ping-pong" in result.stdout, result.stdout
    assert result.stdout.count("identity task, ") == 2, result.stdout  # one row per payload


def test_main_call_bench_quick():
    result = run("bench/main_call.py", "--quick", "--rounds", "1")
    assert result.returncode == 0, result.stderr
    assert "1 worker" in result.stdout and "us/call" in result.stdout, result.stdout
    assert "2 workers at once" in result.stdout and "ThreadPoolExecutor" in result.stdout, result.stdout
    assert "main thread busy" in result.stdout, result.stdout


def test_call_in_main_example_runs():
    result = run("examples/call_in_main.py")
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("std after smoothing") == 8, result.stdout


def test_images_example_checks_its_results():
    result = run("examples/images.py", "--images", "3", "--size", "16", "--workers", "2", "--rounds", "1")
    assert result.returncode == 0, result.stderr  # it asserts parallel output == serial output itself
    assert "results identical to the serial run" in result.stdout, result.stdout
