"""The source tree's layers: which folder of src/ may include which, and the internal headers through
which ext/ (the extension) reaches the core. The layer table is docs/architecture.md's (written once,
there); this test reads it and holds the tree to it. A new include that crosses a layer the wrong way
fails here, with the file and the line."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ARCHITECTURE = ROOT / "docs" / "architecture.md"


def read_layer_table() -> tuple[dict[str, set[str]], dict[tuple[str, str], set[str]]]:
    """docs/architecture.md's "Layers" table: a row per src/ folder, bottom to top, whose first cell is
    `folder/` and whose last cell names, in backticks, the layers it may include (`codec/`) or, where
    only some headers of a layer are allowed, those headers (`codec/payload.hpp`). Text outside the
    backticks is for readers. Returns the layers each may include, and the header-only allowances."""
    section = ARCHITECTURE.read_text().split("\n## Layers\n", 1)[1].split("\n## ", 1)[0]
    layers: dict[str, set[str]] = {}
    only: dict[tuple[str, str], set[str]] = {}
    for row in section.splitlines():
        cells = [c.strip() for c in row.strip().strip("|").split("|")]
        m = re.fullmatch(r"`(\w+)/`", cells[0]) if row.startswith("|") else None
        if not m:
            continue  # the header row, the separator, ext/ (checked through EXT_API below)
        layer = m.group(1)
        layers[layer] = set()
        for name in re.findall(r"`([^`]+)`", cells[-1]):
            folder, _, header = name.partition("/")
            if header:
                only.setdefault((layer, folder), set()).add(name)
            layers[layer].add(folder)
    assert layers, f"no layer rows found in {ARCHITECTURE}'s Layers table"
    return layers, only


# Each layer of src/ and the layers its files may include (besides their own, the public
# include/manygil/ headers, CPython and the standard library); where only some of a layer's headers
# are allowed (shared/ needs only codec/payload.hpp: a channel queues payloads), those headers.
LAYERS, ONLY = read_layer_table()

# What ext/ may include from src/ besides the public headers and the `cpython/` layer (EXT_LAYERS:
# the C-API toolkit every C-API file of the tree uses, and an extension is C-API code): the core's
# interface for the extension, one header per need, each with why the public API does not serve.
EXT_LAYERS = {"cpython"}
EXT_API: set[str] = {
    # Python objects to and from payloads, the hot path of every task (public API: Values only).
    "codec/payload_python.hpp",
    # The shared objects' Python types, which _core exports (one call adds them all).
    "pytypes/shared_types.hpp",
    # The timeout and interrupt rules of blocking calls, which call_in_main and submit_with share
    # with the shared objects' methods.
    "pytypes/blocking_call.hpp",
    # The runtime's task state, which the Python Future binds to (manygil::Task is its C++ handle).
    "runtime/task_state.hpp",
    # What a task runs when it is not a Python object: "module:qualname" calls and source text.
    "runtime/call_target.hpp",
    # The queue of calls into main that call_in_main posts Python calls to.
    "runtime/main_calls.hpp",
}

INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)
SOURCES = (".c", ".h", ".cpp", ".hpp")


def includes(path: Path) -> list[tuple[int, str]]:
    text = path.read_text()
    return [(text.count("\n", 0, m.start()) + 1, m.group(1)) for m in INCLUDE.finditer(text)]


def test_every_source_file_is_in_a_layer() -> None:
    loose = [p.name for p in (ROOT / "src").iterdir() if p.is_file()]
    assert not loose, f"src/ holds only layer folders; place these in one: {loose}"
    folders = {p.name for p in (ROOT / "src").iterdir() if p.is_dir()}
    assert folders == set(LAYERS), "a new layer needs a row in LAYERS and in docs/architecture.md"


def test_the_layers_form_an_order() -> None:
    # No exceptions and no cycles: a layer never may include one that may include it.
    done: set[str] = set()
    while len(done) < len(LAYERS):
        ready = {layer for layer, below in LAYERS.items() if layer not in done and below <= done}
        assert ready, f"the layers include each other: {sorted(set(LAYERS) - done)}"
        done |= ready


def test_layers_include_only_what_they_may() -> None:
    bad = []
    for path in sorted((ROOT / "src").rglob("*")):
        if path.suffix not in SOURCES:
            continue
        rel = path.relative_to(ROOT).as_posix()
        layer = path.parent.name
        for line, header in includes(path):
            if header.startswith("manygil/") or header.startswith("internal/"):
                continue  # public headers; CPython's internal headers (cpython/dict_fill.c)
            target = header.split("/", 1)[0]
            if "/" not in header or target not in LAYERS:
                bad.append(f"{rel}:{line}: {header!r} is not named by its layer folder")
                continue
            if target == layer:
                continue
            allowed = target in LAYERS[layer] and header in ONLY.get((layer, target), {header})
            if not allowed:
                bad.append(f"{rel}:{line}: {layer}/ may not include {header}")
    assert not bad, "\n".join(bad)


def test_ext_reaches_the_core_only_through_its_declared_headers() -> None:
    bad = []
    used = set()
    for path in sorted((ROOT / "ext").iterdir()):
        if path.suffix not in SOURCES:
            continue
        for line, header in includes(path):
            if header.startswith("manygil/") or "/" not in header or header.split("/")[0] in EXT_LAYERS:
                continue  # public headers; ext's own; the C-API toolkit
            used.add(header)
            if header not in EXT_API:
                bad.append(f"ext/{path.name}:{line}: {header} is not in the extension's interface (EXT_API)")
    assert not bad, "\n".join(bad)
    assert used == EXT_API, f"EXT_API lists headers ext/ no longer uses: {sorted(EXT_API - used)}"


def test_public_headers_include_only_public_headers() -> None:
    bad = []
    for path in sorted((ROOT / "include" / "manygil").iterdir()):
        for line, header in includes(path):
            if not header.startswith("manygil/"):
                bad.append(f"include/manygil/{path.name}:{line}: {header}")
    assert not bad, "\n".join(bad)


def test_no_cpp_file_imports_a_module_of_the_package() -> None:
    """The core and the extension get what the package lends them (its pickler, its exception
    factories) through the hooks it registers at import (cpython/interpreter_dict.hpp:
    package_hook), so a C++ host without the package behaves as documented instead of importing it."""
    imports = re.compile(r'Import\w*\(\s*"manygil[."]')
    bad = []
    for folder in ("src", "ext"):
        for path in sorted((ROOT / folder).rglob("*")):
            if path.suffix not in SOURCES:
                continue
            for m in imports.finditer(path.read_text()):
                line = path.read_text().count("\n", 0, m.start()) + 1
                bad.append(f"{path.relative_to(ROOT).as_posix()}:{line}: {m.group(0)}")
    assert not bad, "\n".join(bad)
