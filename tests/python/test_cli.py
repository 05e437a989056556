"""The `manygil` command end to end: `bench --quick` with its JSON and chart (`compat`: test_compat.py)."""

import json
import os
import re
import subprocess
import sys

import pytest

MODELS = {"serial", "threads", "processes (fork)", "processes (spawn)", "stdlib interpreters", "manygil",
          "free-threaded threads"}
WORKLOADS = {"fib", "nbody", "json", "regex", "parser", "transfer bytes", "transfer dict", "transfer SharedBuffer",
             "submit().result()", "map"}


def manygil_cli(*args, tmp_path, env=None, timeout=600):
    return subprocess.run([sys.executable, "-m", "manygil", *args], capture_output=True, text=True,
                          cwd=tmp_path, env=env or os.environ, timeout=timeout)


@pytest.fixture(scope="module")
def quick_bench(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("bench")
    # No free-threaded Python on purpose (an empty cache, no python3.1xt on PATH): it must be
    # reported as unavailable, with the reason, and the run must go on.
    env = dict(os.environ, MANYGIL_CACHE=str(tmp / "no-cache"), PATH=os.path.dirname(sys.executable) + ":/usr/bin:/bin")
    proc = manygil_cli("bench", "--quick", "--rounds", "1", "--workers", "2", "--json", "out.json", "--plot", "out.png",
                       tmp_path=tmp, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    with open(tmp / "out.json") as f:
        return proc, json.load(f), tmp


@pytest.mark.slow
def test_bench_json_has_the_documented_schema(quick_bench):
    _, doc, _ = quick_bench
    assert doc["schema"] == "manygil-bench/1"
    assert doc["workers"] == 2 and doc["quick"] is True and doc["rounds"] == 1
    assert isinstance(doc["cpus"], int) and doc["python"] == sys.version.split()[0] and doc["date"]
    assert {m["name"] for m in doc["models"]} == MODELS
    for m in doc["models"]:
        assert set(m) >= {"name", "available", "reason", "startup_s", "rss_per_worker_mb"}
    assert {w["name"] for w in doc["workloads"]} == WORKLOADS
    for w in doc["workloads"]:
        assert w["kind"] in ("cpu", "transfer", "overhead") and w["unit"] in ("s", "us/call", "us/item")
        for r in w["results"].values():
            assert set(r) >= {"time", "speedup", "vs_manygil", "error"}
            assert (r["time"] is None) == (r["error"] is not None)


@pytest.mark.slow
def test_bench_runs_every_available_model_correctly(quick_bench):
    _, doc, _ = quick_bench
    models = {m["name"]: m for m in doc["models"]}
    for name in ("serial", "threads", "processes (fork)", "processes (spawn)", "manygil"):
        assert models[name]["available"], models[name]
    assert models["manygil"]["startup_s"] > 0 and models["manygil"]["rss_per_worker_mb"] is not None
    by_name = {w["name"]: w for w in doc["workloads"]}
    for w in ("fib", "nbody", "json", "regex", "parser", "transfer bytes", "transfer dict"):
        manygil_result = by_name[w]["results"]["manygil"]
        assert manygil_result["error"] is None and manygil_result["time"] > 0, (w, manygil_result)
        assert manygil_result["vs_manygil"] == pytest.approx(1.0)
        if by_name[w]["kind"] == "cpu":
            assert by_name[w]["results"]["serial"]["speedup"] == pytest.approx(1.0)
            assert manygil_result["speedup"] > 0
        else:  # serial transfers nothing: no speedup to speak of
            assert manygil_result["speedup"] is None
    # SharedBuffers do not cross processes: shown as such, not as a failure of the run.
    assert by_name["transfer SharedBuffer"]["results"]["processes (spawn)"]["error"].startswith("n/a")
    assert by_name["transfer SharedBuffer"]["results"]["manygil"]["time"] > 0


@pytest.mark.slow
def test_bench_reports_an_unavailable_model_with_its_reason(quick_bench):
    proc, doc, _ = quick_bench
    ft = next(m for m in doc["models"] if m["name"] == "free-threaded threads")
    assert ft["available"] is False and "make peers" in ft["reason"]
    assert "free-threaded threads: unavailable" in proc.stdout


@pytest.mark.slow
def test_bench_prints_the_table_and_draws_the_chart(quick_bench):
    proc, _, tmp = quick_bench
    assert "speedup" in proc.stdout and "vs manygil" in proc.stdout
    for name in ("fib", "transfer dict", "submit().result()", "processes (fork)", "RSS per idle worker"):
        assert name in proc.stdout
    with open(tmp / "out.png", "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    # The demo's last line sums it up (the figures are measurements, not checked here).
    last = proc.stdout.strip().splitlines()[-1]
    assert re.fullmatch(r"manygil: \d+\.\d\dx serial on \d+ cores, \d+\.\d\dx the best other model \(.*"
                        r"fib \d+\.\d\dx/\d+\.\d\dx.*parser \d+\.\d\dx/\d+\.\d\dx\)", last), last


def test_bench_refuses_bad_arguments(tmp_path):
    proc = manygil_cli("bench", "--workers", "-1", tmp_path=tmp_path)
    assert proc.returncode == 2 and "--workers" in proc.stderr


def test_a_failing_or_wrong_model_is_reported_and_the_run_goes_on():
    from manygil._bench import models, runner

    class Fails(models.Serial):
        name = "fails"

        def map(self, fn, items, chunksize=1):
            raise OSError("worker exploded")

    class Wrong(models.Serial):
        name = "wrong"

        def map(self, fn, items, chunksize=1):
            return [0 for _ in items]

    live = [models.Serial(), Fails(), Wrong(), models.Threads()]
    for m in live:
        m.start(2)
    try:
        entry = runner._run_workload("fib", "cpu", "fib", "4 x fib(15)", [15] * 4, live, 2, lambda *a, **k: None)
    finally:
        for m in live:
            m.stop()
    assert entry["results"]["fails"] == {"time": None, "error": "OSError: worker exploded"}
    assert entry["results"]["wrong"]["error"] == "AssertionError: results differ from the serial run's"
    assert entry["results"]["threads"]["error"] is None and entry["results"]["threads"]["time"] > 0


def test_the_free_threaded_runner_needs_no_manygil(tmp_path):
    # A free-threaded CPython cannot build manygil (CMakeLists.txt and src/cpython/private_api.hpp
    # refuse it), so the bench's runner for it must not import manygil: here every import of it fails.
    import manygil._bench

    runner = os.path.join(os.path.dirname(manygil._bench.__file__), "ft_runner.py")
    code = ("import runpy, sys\n"
            "class NoManygil:\n"
            "    @staticmethod\n"
            "    def find_spec(name, path=None, target=None):\n"
            "        if name == 'manygil' or name.startswith('manygil.'):\n"
            "            raise ImportError('manygil is not installed in a free-threaded CPython')\n"
            "sys.meta_path.insert(0, NoManygil)\n"
            f"runpy.run_path({runner!r}, run_name='__main__')\n")
    spec = {"workers": 1, "rounds": 1, "workloads": [{"name": "fib", "fn": "fib", "items": [10]}]}
    proc = subprocess.run([sys.executable, "-c", code], input=json.dumps(spec), capture_output=True, text=True,
                          cwd=tmp_path, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout)
    assert "fib" in out and "error" not in out["fib"], out
