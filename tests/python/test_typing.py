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


def test_each_public_name_is_documented_exported_and_typed_once():
    """manygil/__init__.py names its public names in three places that must agree: the docstring's
    list (what users read in help(manygil)), _PUBLIC (what __getattr__ imports, and __all__), and the
    TYPE_CHECKING imports (what type checkers see). Each name is also reachable and listed once."""
    import ast
    import re
    from pathlib import Path

    import manygil

    source = Path(manygil.__file__).read_text()
    documented = re.findall(r"^- (\w+): ", manygil.__doc__, re.M)
    typed = [alias.asname or alias.name
             for node in ast.walk(ast.parse(source))
             if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING"
             for stmt in node.body if isinstance(stmt, ast.ImportFrom)
             for alias in stmt.names]
    for where, names in (("docstring", documented), ("TYPE_CHECKING imports", typed)):
        assert len(names) == len(set(names)), f"a name is listed twice in the {where}: {names}"
        assert set(names) == set(manygil.__all__), (
            f"the {where} and __all__ differ: only in the {where}: {set(names) - set(manygil.__all__)}, "
            f"only in __all__: {set(manygil.__all__) - set(names)}")
    for name in manygil.__all__:
        assert getattr(manygil, name) is not None
        assert name in dir(manygil)
