"""The source fallback: in workers, a compiled module that refuses own-GIL interpreters loads from the
Python source beside it (SQLAlchemy 2.1's Cython modules, mypyc's shims in tomli and black,
charset-normalizer's Cython modules); a module without its source, or whose extension loads, does not.
Each library's answer in workers is compared with the main interpreter's (compiled) one."""

import importlib.util
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import textwrap
import threading

import pytest

import manygil
import source_fallback_tasks as tasks
from manygil import _source_fallback

SQLALCHEMY_CY = "sqlalchemy.util._collections_cy"


def so(path):
    return path.endswith(tuple(importlib.machinery.EXTENSION_SUFFIXES))


@pytest.fixture(scope="module")
def fresh_pool():
    """Two workers on interpreters of their own (not reused from earlier tests)."""
    with manygil.Pool(2, reuse_interpreters=False) as pool:
        yield pool


@pytest.fixture
def synthetic(tmp_path, monkeypatch):
    """Packages built from CPython's test extensions, with and without a .py beside them:
    mgsf_single: single-phase _testsinglephase + _testsinglephase.py (loads from source);
    mgsf_nosource: the same extension alone (refuses, as ever);
    mgsf_own: _bisect (multi-phase, own GIL) + _bisect.py (the extension loads)."""
    layout = {"mgsf_single": ("_testsinglephase", True), "mgsf_nosource": ("_testsinglephase", False),
              "mgsf_own": ("_bisect", True), "mgsf_badsource": ("_testsinglephase", True)}
    for package, (ext, with_source) in layout.items():
        d = tmp_path / package
        d.mkdir()
        (d / "__init__.py").write_text("")
        origin = importlib.util.find_spec(ext).origin
        shutil.copy(origin, d / os.path.basename(origin))
        if with_source:
            (d / f"{ext}.py").write_text("FROM_SOURCE = True\ndef look_up_self():\n    import sys\n"
                                         "    return sys.modules[__name__]\n")
    # A source that is no stand-in (as pyzmq's _zmq.py, which needs Cython to compile it).
    (tmp_path / "mgsf_badsource" / "_testsinglephase.py").write_text("raise ImportError('compile me first')\n")
    monkeypatch.syspath_prepend(str(tmp_path))  # workers copy sys.path when the pool starts
    return tmp_path


# ---- libraries, each compared with the main interpreter --------------------------------------------------


def test_sqlalchemy_orm_session_in_workers(fresh_pool, tmp_path):
    names = ["alice", "bob", "anna", "albert", "carol", "ab"]
    expected = tasks.orm_session("sqlite://", names)
    assert expected[0][0][1] == "albert" and expected[2].startswith("2.")
    futures = [fresh_pool.submit(tasks.orm_session, "sqlite://", names) for _ in range(4)]
    futures.append(fresh_pool.submit(tasks.orm_session, f"sqlite:///{tmp_path / 'orm.db'}", names))
    for f in futures:
        assert f.result(timeout=120) == expected
    [worker_file] = fresh_pool.submit(tasks.module_files, SQLALCHEMY_CY).result()
    [main_file] = tasks.module_files(SQLALCHEMY_CY)
    assert worker_file.endswith("_collections_cy.py") and so(main_file)
    assert SQLALCHEMY_CY in fresh_pool.stats()["source_fallback"]


# tomli's TOMLDecodeError pickles as its message only, and warns when rebuilt from it (as with multiprocessing).
@pytest.mark.filterwarnings("ignore:Free-form arguments for TOMLDecodeError:DeprecationWarning")
def test_tomli_parses_in_workers(fresh_pool):
    doc = textwrap.dedent("""
        title = "manygil"
        [owner]
        name = "Tom"
        dob = 1979-05-27T07:32:00-08:00
        [[servers]]
        ip = "10.0.0.1"
        ports = [8000, 8001]
        [[servers]]
        ip = "10.0.0.2"
        inline = { a = 1.5, b = [true, false] }
    """)
    expected = tasks.toml_parse(doc)
    assert fresh_pool.submit(tasks.toml_parse, doc).result() == expected
    assert list(fresh_pool.map(tasks.toml_parse, [doc] * 8)) == [expected] * 8
    worker_files = fresh_pool.submit(tasks.module_files, "tomli", "tomli._parser").result()
    assert worker_files[0].endswith("tomli/__init__.py") and worker_files[1].endswith("tomli/_parser.py")
    assert all(so(f) for f in tasks.module_files("tomli", "tomli._parser"))
    # A parse error is tomli's own exception type, from the source module, rebuilt in the main one.
    import tomli

    with pytest.raises(tomli.TOMLDecodeError):
        fresh_pool.submit(tasks.toml_parse, "a = = 1").result()
    assert {"tomli", "tomli._parser"} <= set(fresh_pool.stats()["source_fallback"])


def test_charset_normalizer_detects_in_workers(fresh_pool):
    samples = ["Bonjour, où êtes-vous ? Ça va très bien, merci beaucoup, à bientôt.".encode("cp1252"),
               "Привет, как дела? Всё хорошо, спасибо большое, до свидания.".encode("koi8_r"),
               "こんにちは、お元気ですか。私は元気です。ありがとうございます。".encode("shift_jis"),
               b"plain ascii text, nothing special here at all"]
    expected = [tasks.detect(s) for s in samples]
    assert list(fresh_pool.map(tasks.detect, samples)) == expected
    [md] = fresh_pool.submit(tasks.module_files, "charset_normalizer.md").result()
    assert md.endswith("md.py") and so(tasks.module_files("charset_normalizer.md")[0])


def test_black_formats_a_string_and_a_file_in_workers(fresh_pool, tmp_path):
    source = "def f(a,b):\n  return {'a':a,'b':[b,b,b,b,b,b,b,b,b,b,b,b,b,b,b,b,b,b,b,b]}\nx=f(1,2)\n"
    assert fresh_pool.submit(tasks.black_format, source).result() == tasks.black_format(source)
    in_worker, in_main = tmp_path / "w.py", tmp_path / "m.py"
    in_worker.write_text(source)
    in_main.write_text(source)
    assert fresh_pool.submit(tasks.black_format_file, str(in_worker)).result() == tasks.black_format_file(str(in_main))
    assert in_worker.read_text() == in_main.read_text() != source
    [black_file] = fresh_pool.submit(tasks.module_files, "black").result()
    assert black_file.endswith("black/__init__.py")


# ---- which modules it touches ------------------------------------------------------------------------


def test_synthetic_packages(synthetic):
    with manygil.Pool(1, reuse_interpreters=False) as pool:
        files = pool.submit(tasks.module_files, "mgsf_single._testsinglephase", "mgsf_own._bisect").result()
        assert files[0].endswith("_testsinglephase.py")  # refuses, source beside it: from source
        assert so(files[1])  # own-GIL extension: kept, though a .py stands beside it
        error = pool.submit(tasks.import_error, "mgsf_nosource._testsinglephase").result()
        assert "does not support loading in subinterpreters" in error  # no source: refuses as ever
        # A source that fails gives the refusal back (fallback= and manygil compat know its words).
        error = pool.submit(tasks.import_error, "mgsf_badsource._testsinglephase").result()
        assert error.startswith("module mgsf_badsource._testsinglephase does not support loading in "
                                "subinterpreters, and its Python source "), error
        assert error.endswith("failed to load instead: ImportError: compile me first")
        assert pool.submit(tasks.in_sys_modules, "mgsf_badsource._testsinglephase").result() is False
        assert pool.stats()["source_fallback"] == ["mgsf_single._testsinglephase"]
    with manygil.Pool(1, reuse_interpreters=False, fallback="main") as pool:  # re-routed as a refusal
        assert so(pool.submit(tasks.module_files, "mgsf_badsource._testsinglephase").result()[0])  # in main
        assert pool.stats()["fallbacks"] == 1
    with manygil.Pool(1, reuse_interpreters=False, source_fallback=False) as pool:
        assert "does not support loading in subinterpreters" in pool.submit(
            tasks.import_error, "mgsf_single._testsinglephase").result()
        assert so(pool.submit(tasks.module_files, "mgsf_own._bisect").result()[0])
        assert pool.stats()["source_fallback"] == []


def test_a_module_that_loads_keeps_its_extension(fresh_pool):
    files = fresh_pool.submit(tasks.module_files, "markupsafe._speedups", "_decimal", "_json").result()
    assert all(so(f) for f in files[:2]), files
    assert tasks.module_files("_json")[0] == files[2]


def test_refusing_module_without_source_refuses_with_todays_message():
    pytest.importorskip("numpy", reason="numpy is in requirements-dev.txt")
    with manygil.Pool(1, reuse_interpreters=False) as on, manygil.Pool(1, reuse_interpreters=False,
                                                                       source_fallback=False) as off:
        for name in ("numpy", "psycopg2"):
            with_fallback = on.submit(tasks.import_error, name).result()
            without = off.submit(tasks.import_error, name).result()
            assert with_fallback and "does not support loading in subinterpreters" in with_fallback
            assert with_fallback.replace("psycopg2._psycopg", "_psycopg") == without.replace("psycopg2._psycopg", "_psycopg")
        assert on.stats()["source_fallback"] == []


def test_off_by_argument():
    with manygil.Pool(1, reuse_interpreters=False, source_fallback=False) as pool:
        error = pool.submit(tasks.import_error, "tomli").result()
        assert error == "module tomli does not support loading in subinterpreters"
        assert pool.stats()["source_fallback"] == []


def test_reused_interpreter_reports_to_the_next_pool():
    with manygil.Pool(1) as pool:
        pool.submit(tasks.toml_parse, "a = 1").result()
        assert "tomli" in pool.stats()["source_fallback"]
    with manygil.Pool(1) as pool:  # starts on the interpreter the last one parked, tomli imported
        pool.submit(tasks.toml_parse, "a = 1").result()
        assert "tomli" in pool.stats()["source_fallback"]


def test_several_workers_import_the_same_modules_at_once():
    with manygil.Pool(4, reuse_interpreters=False) as pool:
        for name in ("black", "sqlalchemy.orm", "charset_normalizer"):
            barrier = manygil.Barrier(4)
            files = [f.result(timeout=120) for f in [pool.submit(tasks.import_after_barrier, barrier, name)
                                                     for _ in range(4)]]
            assert len(set(files)) == 1 and files[0].endswith(".py"), files
        assert {"black", "black.linegen", "charset_normalizer.md", SQLALCHEMY_CY} <= set(pool.stats()["source_fallback"])


# ---- the finder's judgement ---------------------------------------------------------------------------


def test_verdicts_read_without_loading():
    def verdict(name):
        spec = importlib.util.find_spec(name)
        return _source_fallback.verdict(spec.origin, name)

    refuses, why, library = verdict("tomli._parser")
    assert refuses and why.startswith("mypyc shim") and library.endswith("__mypyc")
    assert verdict("psycopg2._psycopg")[:2] == (True, "single-phase init")
    assert verdict("_testsinglephase")[:2] == (True, "single-phase init")
    refuses, why, _ = verdict(SQLALCHEMY_CY)
    assert refuses and why.startswith("multi-phase init without own-GIL support")
    assert verdict("_bisect")[:2] == (False, "multi-phase init with own-GIL support")
    assert verdict("markupsafe._speedups")[:2] == (False, "multi-phase init with own-GIL support")
    # _testmultiphase imports both PyModuleDef_Init and PyModule_Create2: left to the normal import.
    assert verdict("_testmultiphase")[0] is False
    undefined, defined = _source_fallback.elf_symbols(importlib.util.find_spec("_testsinglephase").origin)
    assert "PyModule_Create2" in undefined and "PyInit__testsinglephase" in defined
    with pytest.raises(ValueError):
        _source_fallback.elf_symbols(tasks.__file__)


# ---- as users run it: scripts, the environment variable, logging, manygil.Server ------------------------


def test_user_script_functions_by_value_log_once_and_main_untouched(run_python):
    proc = run_python("""
        import logging, sys
        import manygil

        def parse(text):
            import tomli
            return tomli.loads(text)

        def where():
            import tomli
            return tomli.__file__

        if __name__ == "__main__":
            logging.basicConfig(level=logging.INFO, format="%(name)s %(levelname)s %(message)s", stream=sys.stdout)
            with manygil.Pool(3) as pool:
                print(sorted(pool.map(lambda t: tuple(parse(t).items()), ["a = 1", "b = 2", "c = 3"] * 3)))
                print("file", pool.submit(where).result())
                print("stats", pool.stats()["source_fallback"])
            with manygil.Pool(2) as pool:  # a second pool: the same modules are not logged again
                print("again", pool.submit(parse, "x = 1").result())
                print("stats", pool.stats()["source_fallback"])
            print("main", sorted(m for m in sys.modules if m.startswith("tomli") or "mypyc" in m))
    """)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout.splitlines()
    assert "[(('a', 1),), (('a', 1),), (('a', 1),), (('b', 2),), (('b', 2),), (('b', 2),), (('c', 3),), (('c', 3),), (('c', 3),)]" in out
    assert any(line.startswith("file ") and line.endswith("tomli/__init__.py") for line in out), out
    assert out.count("stats ['tomli', 'tomli._parser', 'tomli._re']") == 2, out
    assert "again {'x': 1}" in out
    logs = [line for line in out if line.startswith("manygil INFO")]
    for name in ("tomli", "tomli._parser", "tomli._re"):
        mine = [line for line in logs if line.startswith(f"manygil INFO {name}: loaded from its Python source")]
        assert len(mine) == 1, logs
    assert "mypyc shim" in logs[0] and "MANYGIL_SOURCE_FALLBACK=0" in logs[0]
    assert "main []" in out  # the main interpreter imported none of it: nothing half-initialised there


def test_environment_variable_turns_it_off(run_python):
    code = """
        import manygil
        def imp():
            try:
                import tomli
                return tomli.__file__
            except ImportError as e:
                return str(e)
        if __name__ == "__main__":
            with manygil.Pool(1) as pool:
                print(pool.submit(imp).result())
                print(pool.stats()["source_fallback"])
    """
    for value, expected in (("0", "module tomli does not support loading in subinterpreters"), ("off", None),
                            ("1", "tomli/__init__.py")):
        os.environ["MANYGIL_SOURCE_FALLBACK"] = value
        try:
            proc = run_python(code)
        finally:
            del os.environ["MANYGIL_SOURCE_FALLBACK"]
        assert proc.returncode == 0, proc.stderr[-3000:]
        first, stats = proc.stdout.splitlines()
        if expected is None:
            assert first == "module tomli does not support loading in subinterpreters" and stats == "[]"
        else:
            assert first.endswith(expected), first


FLASK_SQLALCHEMY_APP = """
from flask import Flask, jsonify
from sqlalchemy import String, create_engine, select
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column


class Base(DeclarativeBase):
    pass


class Item(Base):
    __tablename__ = "items"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(50))


engine = create_engine("sqlite:///DB")
app = Flask(__name__)


@app.route("/items")
def items():
    with Session(engine) as session:
        return jsonify([{"id": i.id, "name": i.name} for i in session.scalars(select(Item).order_by(Item.id))])


@app.route("/item/<int:item_id>")
def item(item_id):
    with Session(engine) as session:
        found = session.get(Item, item_id)
        return (jsonify(name=found.name), 200) if found else (jsonify(error="no such item"), 404)
"""


def test_server_flask_sqlalchemy_app(tmp_path, monkeypatch):
    """A Flask application reading a SQLite database through SQLAlchemy's ORM, served by manygil.Server."""
    import http.client

    db = tmp_path / "items.db"
    with sqlite3.connect(db) as con:
        con.execute("create table items (id integer primary key, name varchar(50) not null)")
        con.executemany("insert into items (name) values (?)", [("spoon",), ("fork",), ("knife",)])
    (tmp_path / "mgsf_flask_app.py").write_text(FLASK_SQLALCHEMY_APP.replace("DB", str(db)))
    monkeypatch.syspath_prepend(str(tmp_path))
    with manygil.Server("mgsf_flask_app:app", workers=2, bind="127.0.0.1:0") as server:
        host, port = server.addresses[0].rsplit(":", 1)
        results = []

        def client():
            conn = http.client.HTTPConnection(host, int(port), timeout=60)
            for path in ("/items", "/item/2", "/item/9"):
                conn.request("GET", path)
                r = conn.getresponse()
                results.append((path, r.status, json.loads(r.read())))
            conn.close()

        threads = [threading.Thread(target=client) for _ in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(results, key=str) == sorted([
            ("/items", 200, [{"id": 1, "name": "spoon"}, {"id": 2, "name": "fork"}, {"id": 3, "name": "knife"}]),
            ("/item/2", 200, {"name": "fork"}), ("/item/9", 404, {"error": "no such item"})] * 3, key=str)
        assert SQLALCHEMY_CY in server.stats()["pool"]["source_fallback"]


# ---- manygil compat --------------------------------------------------------------------------------------


def test_compat_reports_source_and_what_it_would_be_without():
    from manygil import _compat

    rows = {r["module"]: r for r in _compat.check(["tomli", "sqlalchemy"])}
    assert rows["tomli"]["status"] == "source", rows["tomli"]
    assert [x["module"] for x in rows["tomli"]["source"]][:2] == ["tomli", "tomli._parser"]
    assert "mypyc shim" in rows["tomli"]["source"][0]["why"]
    assert rows["sqlalchemy"]["status"] == "source" and not rows["sqlalchemy"]["lacking"]
    assert SQLALCHEMY_CY in [x["module"] for x in rows["sqlalchemy"]["source"]]
    os.environ["MANYGIL_SOURCE_FALLBACK"] = "0"
    try:
        rows = {r["module"]: r for r in _compat.check(["tomli", "sqlalchemy"])}
    finally:
        del os.environ["MANYGIL_SOURCE_FALLBACK"]
    assert rows["tomli"]["status"] == "refuses" and rows["tomli"]["source"] == []
    assert rows["sqlalchemy"]["status"] == "refuses"
