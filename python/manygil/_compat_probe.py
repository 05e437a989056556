"""The child process of `manygil compat`, and the probe it runs in both interpreters.

Run as a script (``python .../_compat_probe.py [--deep] NAME...``), never as ``-m manygil...``: the
main interpreter must import each NAME before it has imported anything else beyond the interpreter's
own start-up modules, so that the extension modules an import loads can be told from the ones that
were there before. That is why this file imports only ``sys`` and ``os`` (both already loaded by
start-up) at the top, and why nothing here imports the ``manygil`` package until the main
interpreter's imports are done.

Order, for each NAME given: first the import in the main interpreter (for all NAMEs), then the same
import in a fresh own-GIL interpreter, one per NAME; then, for the extensions that a worker refused
or went without, their kind (read from the main interpreter's copy of the module). Importing in the
main interpreter first is the order in which a refusal cannot spoil anything: CPython 3.13 runs a
single-phase module's init function in the main interpreter even when a sub-interpreter asks for it,
and caches what it made; a package whose init misbehaves when run that way is then broken for the
main interpreter of that process.

Events go, one JSON object a line, to what was stdout when the process started; the process's own
fd 1 is pointed at stderr, so what an imported package prints cannot garble them. Before each step
the child announces it (``{"event": "begin", ...}``) so that the parent can tell which import the
process died in, or hung in.
"""

import os
import sys

# Found along an exception chain, the extension module that refused (CPython's wording, 3.12+).
REFUSAL_PATTERN = r"module (\S+) does not support loading in subinterpreters"

KIND_SINGLE_PHASE = "single-phase init"
KIND_MULTI_PHASE = "multi-phase init without own-GIL support"
KIND_OWN_GIL = "multi-phase init with own-GIL support"



def extension_modules():
    """The names of the extension modules in sys.modules: built-in ones, and those loaded from a
    file with an extension suffix (".cpython-313-x86_64-linux-gnu.so", ".abi3.so", ".so", ...)."""
    import _imp  # built in, and loaded by start-up: importing it loads nothing

    suffixes = tuple(_imp.extension_suffixes())
    builtin = set(sys.builtin_module_names)
    names = set()
    for name, module in list(sys.modules.items()):
        if name in builtin:
            names.add(name)
            continue
        try:
            path = module.__dict__.get("__file__")  # not getattr: lazy modules import on access
        except Exception:
            continue
        if isinstance(path, str) and path.endswith(suffixes):
            names.add(name)
    return names


class _LoadRecorder:
    """Records every extension module whose creation raised during an import, innermost first.

    A package that catches its extension's ImportError and falls back leaves no other trace, and a
    refusal re-raised with a new message may have lost the module's name: the loaders know it.
    """

    def __enter__(self):
        from importlib.machinery import BuiltinImporter, ExtensionFileLoader

        self.failed = []
        self._saved = [(ExtensionFileLoader, ExtensionFileLoader.__dict__["create_module"]),
                       (BuiltinImporter, BuiltinImporter.__dict__["create_module"])]
        recorder = self

        def wrap(create):
            def create_module(*args):
                spec = args[-1]
                try:
                    return create(*args)
                except BaseException as e:
                    recorder.failed.append([spec.name, f"{type(e).__name__}: {e}"])
                    raise
            return create_module

        ExtensionFileLoader.create_module = wrap(ExtensionFileLoader.create_module)
        BuiltinImporter.create_module = staticmethod(wrap(BuiltinImporter.create_module))
        return self

    def __exit__(self, *exc_info):
        for cls, original in self._saved:
            setattr(cls, "create_module", original)
        return False


def _chain(exc):
    """exc, then its __cause__ or __context__, and so on (each once)."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ if exc.__cause__ is not None else exc.__context__


def refused_module(exc):
    """The module named by the innermost "does not support loading in subinterpreters" along the
    exception chain of exc (a package may re-raise the refusal with advice around it), or None."""
    import re

    found = None
    for e in _chain(exc):
        match = re.search(REFUSAL_PATTERN, str(e))
        if match:
            found = match.group(1)
    return found


def probe(name):
    """Imports the module ``name`` here, in whichever interpreter runs this; returns what happened:

    ``ok``; ``error`` ("Type: message", or None); ``missing`` (ModuleNotFoundError for name itself or a
    parent package); ``refused`` (the module a refusal along the exception chain names); ``failed_loads``
    ([[extension, error]] for each extension module whose creation raised, innermost first, even if the
    import caught it); ``loaded`` (extension modules that were not in sys.modules before and are after);
    ``extensions`` (every extension module in sys.modules afterwards).
    """
    before = extension_modules()
    result = {"module": name, "ok": False, "error": None, "missing": False, "refused": None}
    with _LoadRecorder() as recorder:
        try:
            __import__(name)
            result["ok"] = True
        except BaseException as e:  # noqa: B036 - SystemExit or KeyboardInterrupt at import is a result too
            result["error"] = f"{type(e).__name__}: {e}"
            missing = getattr(e, "name", None) if isinstance(e, ModuleNotFoundError) else None
            result["missing"] = bool(missing) and (name == missing or name.startswith(missing + "."))
            result["refused"] = refused_module(e)
    after = extension_modules()
    # CPython may name a refused module by its definition's short name ("_psycopg" for
    # psycopg2._psycopg); the loader that raised knows the full one.
    short = result["refused"]
    if short and "." not in short:
        result["refused"] = next((m for m, _err in recorder.failed if m.endswith("." + short)), short)
    result["failed_loads"] = recorder.failed
    result["loaded"] = sorted(after - before)
    result["extensions"] = sorted(after)
    # In a worker: the modules the source fallback loaded from their Python source instead of their
    # refusing extension (with why), and the extension libraries that made unnecessary (mypyc's).
    fallback = sys.modules.get("manygil._source_fallback")
    result["source"] = dict(sorted(fallback.loaded.items())) if fallback else {}
    result["bypassed"] = sorted(fallback.bypassed) if fallback else []
    return result


def module_kind(name):
    """(kind, evidence) of the extension module ``name``, read from its PyModuleDef.

    The module is the main interpreter's (imported now if it is not yet). Its definition, from
    PyModule_GetDef, tells: no slots (m_slots is NULL) means single-phase init, PyInit_<name> having
    returned a module made with PyModule_Create; slots mean multi-phase init (PEP 489), and the
    Py_mod_multiple_interpreters slot, if any, says whether it allows an own GIL (absent, CPython 3.12+
    takes "supported, shared GIL only"). A single-phase module that CPython remade from its cache has no
    definition left; that alone tells its kind. kind is None when the module cannot be loaded or read.
    """
    import ctypes
    import importlib

    # The PyModuleDef layout and slot values, as the workers' source-fallback finder reads them.
    from manygil._source_fallback import MULTIPLE_INTERPRETERS_VALUES, PY_MOD_MULTIPLE_INTERPRETERS, module_def_slots

    module = sys.modules.get(name)
    if module is None:
        try:
            module = importlib.import_module(name)
        except BaseException as e:  # noqa: B036
            return None, f"could not load it in the main interpreter to read its definition: {type(e).__name__}: {e}"

    get_def = ctypes.pythonapi.PyModule_GetDef
    get_def.restype, get_def.argtypes = ctypes.c_void_p, [ctypes.py_object]
    try:
        address = get_def(module)
    except Exception as e:  # not a module object: PyModule_GetDef raised
        return None, f"no module definition: {type(e).__name__}: {e}"
    if not address:
        if name in extension_modules():
            # Only a single-phase module (m_size -1) is remade without its definition: from the copy
            # CPython cached when a sub-interpreter asked for it before this interpreter did.
            return KIND_SINGLE_PHASE, ("the module has no PyModuleDef: CPython remade it from its cache of "
                                       "single-phase modules (m_copy)")
        return None, "not an extension module (it has no PyModuleDef)"
    try:
        def_name, slots = module_def_slots(address)  # the same reading the workers' finder does
    except ValueError:
        return None, "its definition is not a PyModuleDef object as this probe reads it"
    if slots is None:
        return KIND_SINGLE_PHASE, (f"its PyModuleDef {def_name!r} has no slots: PyInit_{name.rpartition('.')[2]} "
                                   "made the module itself (PyModule_Create)")
    i = len(slots)
    declared = next((value for slot, value in slots if slot == PY_MOD_MULTIPLE_INTERPRETERS), None)
    if declared is None:
        return KIND_MULTI_PHASE, (f"its PyModuleDef {def_name!r} has {i} slot{'s' if i != 1 else ''}, none of them "
                                  "Py_mod_multiple_interpreters, which CPython then takes as "
                                  f"{MULTIPLE_INTERPRETERS_VALUES[1]}")
    what = MULTIPLE_INTERPRETERS_VALUES.get(declared, f"value {declared}")
    kind = KIND_OWN_GIL if declared == 2 else KIND_MULTI_PHASE
    return kind, f"its PyModuleDef {def_name!r} declares Py_mod_multiple_interpreters = {what}"


def extension_submodules(package):
    """The dotted names of the extension modules found on disk under an imported package's __path__."""
    import _imp

    suffixes = sorted(_imp.extension_suffixes(), key=len, reverse=True)
    found = []
    for top in list(getattr(package, "__path__", None) or []):
        for root, dirs, files in os.walk(top):
            dirs[:] = sorted(d for d in dirs if d.isidentifier())  # skips __pycache__'s peers like "x-1.0.dist-info"
            for f in sorted(files):
                suffix = next((s for s in suffixes if f.endswith(s)), None)
                stem = f[: -len(suffix)] if suffix else None
                if not stem or not stem.isidentifier() or stem == "__init__":
                    continue
                parts = os.path.relpath(os.path.join(root, stem), top).split(os.sep)
                found.append(".".join([package.__name__, *parts]))
    return sorted(set(found))


def main(argv):
    """The child: probes each NAME in argv in the main interpreter, then each in its own worker."""
    # Our events get a private copy of stdout; fd 1 (where packages and workers print) joins stderr.
    events = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    deep = argv[:1] == ["--deep"]
    names = argv[1:] if deep else argv

    def begin(phase, name):
        # Written by hand: importing json now would load _json before the main interpreter's import.
        events.write('{"event": "begin", "phase": "%s", "module": "%s"}\n' % (phase, name))
        events.flush()

    main_results = []
    for name in names:  # names are dotted identifiers: the parent checked
        begin("main", name)
        main_results.append(probe(name))
    import json

    def emit(**fields):
        events.write(json.dumps(fields) + "\n")
        events.flush()

    for result in main_results:
        emit(event="result", phase="main", **result)
    if deep and main_results and main_results[0]["ok"]:
        subs = [s for s in extension_submodules(sys.modules[names[0]]) if s not in names]
        emit(event="submodules", module=names[0], submodules=subs)
        for name in subs:
            begin("main", name)
            result = probe(name)
            emit(event="result", phase="main", **result)
            names.append(name)
            main_results.append(result)

    import manygil

    kinds_read = set()  # each extension's kind is read once, however many names it blocks
    for name, main_result in zip(names, main_results):
        if not main_result["ok"]:
            continue  # broken or missing everywhere: nothing to learn from a worker
        begin("worker", name)
        interp = manygil.Interpreter()
        try:
            result = interp.call("manygil._compat_probe:probe", name)
        except BaseException as e:  # noqa: B036 - the probe catches the import's errors; this is the call's
            result = {"module": name, "ok": False, "error": f"{type(e).__name__}: {e}", "missing": False,
                      "refused": refused_module(e), "failed_loads": [], "loaded": [], "extensions": [],
                      "source": {}, "bypassed": []}
        emit(event="result", phase="worker", **result)
        begin("end", name)  # ending the interpreter after an import can crash too (CPython gh-136421)
        interp.close()
        emit(event="ended", module=name)
        # The kind of each extension the worker refused or went without, from the main interpreter's copy.
        suspects = {result["refused"]} | {m for m, _err in result["failed_loads"]}
        suspects |= set(main_result["loaded"]) - set(result["extensions"])
        for ext in sorted(s for s in suspects if s and s not in kinds_read):
            kinds_read.add(ext)
            begin("kind", ext)
            kind, evidence = module_kind(ext)
            emit(event="kind", module=ext, kind=kind, evidence=evidence)
    events.close()


if __name__ == "__main__":
    # Running as a script put this file's directory (the manygil package) first on sys.path; the
    # probed imports should see what `python -m` would: the working directory instead.
    sys.path[0] = os.getcwd()
    main(sys.argv[1:])
