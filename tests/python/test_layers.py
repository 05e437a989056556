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

# The one edge against the order: values cross by reference as the Python types of shared objects,
# so the Python end of the codec wraps and unwraps them (and a Channel's messages are payloads).
EXCEPTIONS: dict[str, set[str]] = {
    "src/codec/payload_python.cpp": {
        "pytypes/shared_buffer_type.hpp",
        "pytypes/channel_type.hpp",
        "pytypes/sync_types.hpp",
        "pytypes/shared_dict_type.hpp",
    },
}

# What ext/ may include from src/: the core's internal interface for the extension.
EXT_API: set[str] = {
    "codec/decode_cache.hpp",
    "codec/payload.hpp",
    "codec/payload_python.hpp",
    "cpython/interpreter_dict.hpp",
    "cpython/ownership.hpp",
    "cpython/private_api.hpp",
    "cpython/py_ref.hpp",
    "cpython/python_error.hpp",
    "pytypes/channel_type.hpp",
    "pytypes/interrupted_wait.hpp",
    "pytypes/shared_buffer_type.hpp",
    "pytypes/shared_dict_type.hpp",
    "pytypes/sync_types.hpp",
    "pytypes/timeout_arg.hpp",
    "runtime/call_target.hpp",
    "runtime/exec_source.hpp",
    "runtime/interruptible_call.hpp",
    "runtime/main_calls.hpp",
    "runtime/worker_group.hpp",
    "wait/spin_wait.hpp",
    "wait/wait_estimate.hpp",
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
            if target == layer or header in EXCEPTIONS.get(rel, set()):
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
            if header.startswith("manygil/") or "/" not in header:
                continue  # public headers; ext's own
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
