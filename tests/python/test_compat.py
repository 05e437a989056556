"""`manygil compat`: statuses, culprits and their kind, --deep, JSON, and probing that spoils nothing.

Most cases run in one `manygil compat --json` over small modules written to a temporary directory
(each is imported in a child process: first in its main interpreter, then in an own-GIL one).
"""

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import textwrap

import pytest

from manygil import _compat, _compat_probe

NUMPY_CULPRIT = "numpy._core._multiarray_umath"
ROW_FIELDS = {"module", "status", "detail", "culprit", "kind", "kind_evidence", "lacking", "source", "main"}

MODULES = {
    "mg_crashes_on_import": "import os, signal\nos.kill(os.getpid(), signal.SIGSEGV)\n",
    # Crashes in an own-GIL interpreter only (the main interpreter is interpreter 0).
    "mg_crashes_in_worker": "import _interpreters, os, signal\n"
                            "if _interpreters.get_current()[0]:\n    os.kill(os.getpid(), signal.SIGSEGV)\n",
    "mg_raises_on_import": "raise RuntimeError('no thanks')\n",
    "mg_raises_in_worker": "import _interpreters\n"
                           "if _interpreters.get_current()[0]:\n    raise LookupError('not here')\n",
    "mg_missing_dependency": "import mg_no_such_dependency\n",
    # A small package whose import imports numpy: numpy's extension is the culprit, two levels down.
    "mg_uses_numpy": "import numpy\n",
    # The refusal re-raised under a message that names nothing: found along __cause__.
    "mg_hides_refusal": "try:\n    import _testsinglephase\nexcept ImportError as e:\n"
                        "    raise ImportError('fast path unavailable') from e\n",
}


def manygil_cli(*args, cwd, env=None, timeout=600):
    return subprocess.run([sys.executable, "-m", "manygil", *args], capture_output=True, text=True, cwd=cwd,
                          env=env or os.environ, timeout=timeout)


def with_path(tmp_path):
    return dict(os.environ, PYTHONPATH=os.pathsep.join([str(tmp_path), *filter(None, [os.environ.get("PYTHONPATH")])]))


@pytest.fixture(scope="module")
def compat_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("compat")
    for name, source in MODULES.items():
        (tmp / f"{name}.py").write_text(source)
    modules = ["json", "_testsinglephase", *MODULES, "mg_no_such_module", "math", "yaml"]
    proc = manygil_cli("compat", *modules, "--json", "compat.json", cwd=tmp, env=with_path(tmp))
    assert proc.returncode == 0, proc.stderr[-3000:]
    with open(tmp / "compat.json") as f:
        doc = json.load(f)
    return proc, doc, {r["module"]: r for r in doc["modules"]}, modules


def test_json_document_and_fields(compat_run):
    _proc, doc, rows, modules = compat_run
    assert doc["schema"] == "manygil-compat/3"
    assert doc["python"] == sys.version.split()[0] and doc["date"] and doc["deep"] is False
    assert [r["module"] for r in doc["modules"]] == modules
    for r in doc["modules"]:
        assert set(r) == ROW_FIELDS, r
        assert r["status"] in _compat.STATUSES and r["main"] in ("works", "fails", "missing", "crashes")


def test_works(compat_run):
    _proc, _doc, rows, _modules = compat_run
    for name in ("json", "math"):
        assert rows[name]["status"] == "works" and rows[name]["main"] == "works", rows[name]
        assert rows[name]["culprit"] is None and rows[name]["lacking"] == []


def test_single_phase_refusal_has_culprit_and_kind(compat_run):
    proc, _doc, rows, _modules = compat_run
    r = rows["_testsinglephase"]
    assert r["status"] == "refuses" and r["main"] == "works"
    assert r["culprit"] == "_testsinglephase" and "does not support loading in subinterpreters" in r["detail"]
    # Read from the module's own definition: PyModule_Create's, without slots.
    assert r["kind"] == "single-phase init" and "no slots" in r["kind_evidence"]
    line = next(line for line in proc.stdout.splitlines() if line.strip().startswith("_testsinglephase"))
    assert "refuses" in line and "single-phase" in line


def test_refusal_found_two_levels_down_in_numpy(compat_run):
    _proc, _doc, rows, _modules = compat_run
    r = rows["mg_uses_numpy"]
    assert r["status"] == "refuses", r
    assert r["culprit"] == NUMPY_CULPRIT
    # NumPy 2 declares Py_mod_multiple_interpreters = NOT_SUPPORTED in a multi-phase definition.
    assert r["kind"] == "multi-phase init without own-GIL support", r
    assert "Py_mod_multiple_interpreters" in r["kind_evidence"]


def test_refusal_followed_through_the_exception_chain(compat_run):
    _proc, _doc, rows, _modules = compat_run
    r = rows["mg_hides_refusal"]
    assert r["status"] == "refuses" and r["culprit"] == "_testsinglephase", r
    assert "fast path unavailable" in r["detail"] and r["kind"] == "single-phase init"


def test_pyyaml_is_degraded_without_its_extension(compat_run):
    _proc, _doc, rows, _modules = compat_run
    r = rows["yaml"]
    # yaml/__init__.py falls back to pure Python when yaml._yaml (LibYAML bindings) will not load.
    assert r["status"] == "degraded" and r["main"] == "works", r
    assert r["culprit"] == "yaml._yaml"
    lacking = {x["module"]: x for x in r["lacking"]}
    assert "yaml._yaml" in lacking
    assert "does not support loading in subinterpreters" in lacking["yaml._yaml"]["error"]
    assert lacking["yaml._yaml"]["kind"] in ("single-phase init", "multi-phase init without own-GIL support")


def test_failures_missing_and_crashes(compat_run):
    _proc, _doc, rows, _modules = compat_run
    r = rows["mg_raises_on_import"]
    assert r["status"] == "fails" and r["main"] == "fails" and "no thanks" in r["detail"]
    r = rows["mg_raises_in_worker"]
    assert r["status"] == "fails" and r["main"] == "works" and "LookupError: not here" in r["detail"]
    assert rows["mg_no_such_module"]["status"] == "missing"
    # A missing dependency is not the module missing, nor a refusal.
    r = rows["mg_missing_dependency"]
    assert r["status"] == "fails" and "mg_no_such_dependency" in r["detail"], r
    # The signal's name; under AddressSanitizer (make sanitize) its handler reports and exits instead.
    for name, main in (("mg_crashes_on_import", "crashes"), ("mg_crashes_in_worker", "works")):
        r = rows[name]
        assert r["status"] == "crashes" and ("SIGSEGV" in r["detail"] or "ABORTING" in r["detail"]), r
        assert r["main"] == main, r


def test_deep_reports_each_extension_submodule(tmp_path):
    # A package with two extension submodules copied from CPython's test modules: one single-phase
    # (refuses), one multi-phase with own-GIL support (works); its __init__ falls back without the first.
    pkg = tmp_path / "mg_pkg"
    pkg.mkdir()
    for ext in ("_testsinglephase", "_testmultiphase"):
        origin = importlib.util.find_spec(ext).origin
        shutil.copy(origin, pkg / os.path.basename(origin))
    (pkg / "__init__.py").write_text("try:\n    from . import _testsinglephase\nexcept ImportError:\n"
                                     "    _testsinglephase = None\nfrom . import _testmultiphase\n")
    proc = manygil_cli("compat", "--deep", "mg_pkg", "--json", "deep.json", cwd=tmp_path, env=with_path(tmp_path))
    assert proc.returncode == 0, proc.stderr[-3000:]
    with open(tmp_path / "deep.json") as f:
        doc = json.load(f)
    assert doc["deep"] is True
    [row] = doc["modules"]
    assert row["status"] == "degraded" and [x["module"] for x in row["lacking"]] == ["mg_pkg._testsinglephase"]
    subs = {r["module"]: r for r in row["submodules"]}
    assert set(subs) == {"mg_pkg._testsinglephase", "mg_pkg._testmultiphase"}
    assert subs["mg_pkg._testsinglephase"]["status"] == "refuses"
    assert subs["mg_pkg._testsinglephase"]["culprit"] == "mg_pkg._testsinglephase"
    assert subs["mg_pkg._testsinglephase"]["kind"] == "single-phase init"
    assert subs["mg_pkg._testmultiphase"]["status"] == "works"
    assert "1 of 2 extension submodules refuse" in proc.stdout


def test_an_import_that_hangs_in_the_worker_is_stopped(tmp_path):
    (tmp_path / "mg_hangs_in_worker.py").write_text(
        "import _interpreters, time\nif _interpreters.get_current()[0]:\n    time.sleep(3600)\n")
    proc = manygil_cli("compat", "--timeout", "4", "mg_hangs_in_worker", "json", "--json", "out.json",
                       cwd=tmp_path, env=with_path(tmp_path))
    assert proc.returncode == 0, proc.stderr[-3000:]
    with open(tmp_path / "out.json") as f:
        rows = {r["module"]: r for r in json.load(f)["modules"]}
    r = rows["mg_hangs_in_worker"]
    assert r["status"] == "fails" and "hung in the own-GIL interpreter" in r["detail"], r
    assert rows["json"]["status"] == "works"  # the next module goes on in a new child


PROBE_THEN_IMPORT = textwrap.dedent("""
    import sys
    from manygil import _compat
    [row] = _compat.check([MODULE])
    assert MODULE not in sys.modules  # probing imported nothing here
    print(row["status"], row["main"])
    import importlib
    module = importlib.import_module(MODULE)
    print("imported", CHECK)
""")


def probe_then_import(module, check):
    script = PROBE_THEN_IMPORT.replace("MODULE", repr(module)).replace("CHECK", check)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout.split("\n")


def test_a_refused_single_phase_module_still_imports_in_main_afterwards():
    status, imported = probe_then_import("_testsinglephase", "module.look_up_self() is module, "
                                         "module.initialized_count()")[:2]
    assert status == "refuses works"
    assert imported == "imported True 1"  # initialised once, by this import


def test_probing_psycopg2_leaves_it_importable_in_main():
    # psycopg2's single-phase _psycopg, once a worker has tried it, no longer imports in that
    # process's main interpreter (see the next test): the probe must never be the first to try it.
    pytest.importorskip("psycopg2", reason="psycopg2-binary is in requirements-dev.txt")
    status, imported = probe_then_import("psycopg2", "hasattr(module.extensions, 'encodings')")[:2]
    assert status == "refuses works"  # in the probe's process too, the main interpreter imported it
    assert imported == "imported True"


def test_what_the_probe_order_guards_against():
    """A worker that tries psycopg2 first spoils it for the main interpreter (CPython 3.13 runs a
    single-phase init function in the main interpreter for a sub-interpreter, and caches the result)."""
    pytest.importorskip("psycopg2", reason="psycopg2-binary is in requirements-dev.txt")
    script = textwrap.dedent("""
        import manygil
        try:
            with manygil.Interpreter() as interp:
                interp.exec("import psycopg2")
        except ImportError:
            pass
        try:
            import psycopg2
            print("imports")
        except ImportError as e:
            print("spoiled:", e)
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    if proc.stdout.startswith("imports"):
        pytest.skip(f"CPython {sys.version.split()[0]} no longer spoils psycopg2 for the main interpreter")
    assert proc.stdout.startswith("spoiled:"), proc.stdout


def test_pandas_refuses_because_of_numpy():
    pytest.importorskip("pandas", reason="pandas is in requirements-dev.txt; this environment lacks it")
    [row] = _compat.check(["pandas"])
    assert row["status"] == "refuses" and row["culprit"] == NUMPY_CULPRIT, row


def test_refused_module_follows_cause_and_context():
    refusal = ImportError("module a.b._c does not support loading in subinterpreters")
    try:
        try:
            raise refusal
        except ImportError:
            raise ImportError("b needs its C part")  # context only
    except ImportError as middle:
        outer = ImportError("a is unavailable")
        outer.__cause__ = middle
    assert _compat_probe.refused_module(outer) == "a.b._c"
    assert _compat_probe.refused_module(ImportError("something else")) is None


def test_module_kind_reads_the_definition():
    assert _compat_probe.module_kind("_testsinglephase")[0] == "single-phase init"
    assert _compat_probe.module_kind("math")[0] == "multi-phase init with own-GIL support"
    assert _compat_probe.module_kind("json") == (None, "not an extension module (it has no PyModuleDef)")


def test_default_list_covers_stdlib_extensions():
    names = _compat.default_modules()
    assert "_json" in names and "math" in names and "_decimal" in names
    assert "_testsinglephase" not in names
    assert "cloudpickle" in names  # installed in this environment
