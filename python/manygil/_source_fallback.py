"""Source fallback: in a worker, a compiled module that refuses own-GIL interpreters is loaded from the
Python source that stands beside it (``name.py`` next to ``name.cpython-313-x86_64-linux-gnu.so``).

Wheels of Cython's pure-Python mode (SQLAlchemy 2.1, charset-normalizer 3.5) and of mypyc (tomli,
black, mypy) ship each compiled module's ``.py`` too. The finder (``_worker._SourceFallbackFinder``,
placed just before PathFinder on the worker's ``sys.meta_path``) asks PathFinder what the normal import
would load; when that is an extension module (only then is this module imported) with a ``.py`` of
the same name in the same directory (``__init__.py`` for a package compiled as ``__init__.so``), and
the extension refuses own-GIL interpreters, it returns a spec for the source instead. Any other module, and a refusing one without its source, load as before.

How the refusal is learnt, without running the module's code:

- CPython 3.13 runs the init function of a single-phase module (and of a mypyc shim, which imports its
  group's shared ``<hash>__mypyc`` library and calls its init) in the *main* interpreter before it
  refuses the import in a sub-interpreter: a tried-and-refused tomli leaves ``tomli``, ``tomli._parser``
  and the mypyc library imported in the main interpreter, and black leaves half of its modules there
  after a ``SystemError``. So "import, catch the ImportError, retry from source" is not used for them.
- Instead the finder reads the file's dynamic symbol table (a few reads of the file, no loading): an
  extension that imports ``PyModule_Create2`` and not ``PyModuleDef_Init`` is single-phase init, and
  single-phase modules always refuse own-GIL interpreters. A mypyc shim (neither symbol, the name of a
  ``*__mypyc`` library in its strings) refuses when that library is single-phase.
- An extension that imports ``PyModuleDef_Init`` and not ``PyModule_Create2`` is multi-phase init: its
  ``PyInit_<name>`` only returns its ``PyModuleDef`` (CPython's own import calls it before it checks
  anything, and ``PyModule_FromDefAndSpec`` calls ``PyModuleDef_Init`` again in the importing
  interpreter). The finder loads the file (``dlopen``, as the normal import would), calls it through
  ctypes and reads the ``Py_mod_multiple_interpreters`` slot: anything but
  ``Py_MOD_PER_INTERPRETER_GIL_SUPPORTED`` refuses an own GIL.
- A file that imports both, or that is not an ELF shared object, is left to the normal import.

A source that fails to run (pyzmq's ``_zmq.py`` needs Cython to compile it first) gives the refusal
back, in CPython's words, with the source's error as its cause; the module is not left in sys.modules.

Each module loaded this way is reported to the pool's process (``report``/``Collector``): the pool lists
it in ``stats()["source_fallback"]`` and logs it once on the ``manygil`` logger (INFO).
"""

import os
import sys

ENV = "MANYGIL_SOURCE_FALLBACK"

# Slot id and values from CPython's Include/moduleobject.h (3.12+).
PY_MOD_MULTIPLE_INTERPRETERS = 3
PER_INTERPRETER_GIL_SUPPORTED = 2
MULTIPLE_INTERPRETERS_VALUES = {0: "Py_MOD_MULTIPLE_INTERPRETERS_NOT_SUPPORTED",
                                1: "Py_MOD_MULTIPLE_INTERPRETERS_SUPPORTED (shared GIL only)",
                                2: "Py_MOD_PER_INTERPRETER_GIL_SUPPORTED"}


def enabled_by_env():
    """False when MANYGIL_SOURCE_FALLBACK says off (0, false, no, off), else True."""
    return os.environ.get(ENV, "").strip().lower() not in ("0", "false", "no", "off")


# ---- In workers -------------------------------------------------------------------------------------

# Modules loaded from source in this interpreter: name -> why their extension refuses.
loaded = {}
# Extension modules the normal import would have loaded only for modules that came from source here
# (a mypyc group's shared library): `manygil compat` does not count them as missing.
bypassed = set()
_verdicts = {}  # extension path -> (refuses, why, bypassed library or None)
_library_single_phase = {}  # mypyc library path -> whether it is single-phase init


def report_again():
    """Reports the modules this interpreter loaded from source earlier (a reused interpreter) to the
    pool that set it up now."""
    for name, why in loaded.items():
        if name in sys.modules:
            _send(name, why)


def _send(name, why):
    from . import _worker

    report = _worker.source_fallback_report
    if report is None:
        return
    fd, token = report
    line = f"{token}\t{name}\t{why}".replace("\n", " ")[:3000] + "\n"
    try:
        os.write(fd, line.encode())  # one write below PIPE_BUF: atomic among workers
    except OSError:
        pass


def source_spec(name, spec):
    """For PathFinder's ``spec`` of an extension module: a spec for the module's Python source if the
    extension refuses own-GIL interpreters and the source stands beside it, else None."""
    source = source_beside(name, spec.origin, spec.submodule_search_locations is not None) if spec.origin else None
    if source is None:
        return None
    refuses, why, library = verdict(spec.origin, name)
    if not refuses:
        return None
    from importlib.util import spec_from_file_location

    kwargs = {}
    if spec.submodule_search_locations is not None:
        kwargs["submodule_search_locations"] = spec.submodule_search_locations
    loader = _SourceLoader(name, source)
    loader.why, loader.library = why, library
    return spec_from_file_location(name, source, loader=loader, **kwargs)


def _loader_base():
    from importlib.machinery import SourceFileLoader

    return SourceFileLoader


class _SourceLoader(_loader_base()):
    """SourceFileLoader that notes the module once its code has run."""

    why = ""
    library = None

    def exec_module(self, module):
        name = module.__spec__.name if module.__spec__ is not None else module.__name__
        try:
            super().exec_module(module)
        except Exception as e:
            # Not a stand-in after all (pyzmq's _zmq.py needs Cython to compile it): the refusal, in
            # CPython's words (Pool(fallback=...) and `manygil compat` know them), with what the source said.
            raise ImportError(f"module {name} does not support loading in subinterpreters, and its Python source "
                              f"{self.path} failed to load instead: {type(e).__name__}: {e}",
                              name=name, path=self.path) from e
        if self.library:
            bypassed.add(self.library)
        if name not in loaded:
            loaded[name] = self.why
            _send(name, self.why)


def _suffix(filename):
    import _imp

    return next((s for s in sorted(_imp.extension_suffixes(), key=len, reverse=True) if filename.endswith(s)), None)


def source_beside(name, origin, is_package):
    """The .py of the same module beside the extension file ``origin``, or None: ``<name>.py`` in the
    same directory, or ``__init__.py`` for a package compiled as ``__init__.<suffix>``."""
    directory, filename = os.path.split(origin)
    suffix = _suffix(filename)
    if suffix is None:
        return None
    stem = filename[: -len(suffix)]
    if stem != ("__init__" if is_package else name.rpartition(".")[2]):
        return None
    source = os.path.join(directory, stem + ".py")
    return source if os.path.isfile(source) else None


def verdict(path, name):
    """(refuses, why, library): whether the extension at ``path`` (module ``name``) refuses own-GIL
    interpreters, learnt without running its code; ``library`` names a mypyc shared library the
    module would have imported. Cached per path."""
    found = _verdicts.get(path)
    if found is None:
        try:
            found = _judge(path, name)
        except Exception as e:  # unreadable: leave the module to the normal import
            found = (False, f"not judged: {type(e).__name__}: {e}", None)
        _verdicts[path] = found
    return found


def _judge(path, name):
    undefined, defined = elf_symbols(path)
    short = name.rpartition(".")[2]
    if "PyInit_" + short not in defined:
        return False, f"it defines no PyInit_{short}", None
    multi, single = "PyModuleDef_Init" in undefined, "PyModule_Create2" in undefined
    if single and not multi:
        return True, "single-phase init", None
    if multi and not single:
        value = declared_multiple_interpreters(path, short)
        if value == PER_INTERPRETER_GIL_SUPPORTED:
            return False, "multi-phase init with own-GIL support", None
        what = "no Py_mod_multiple_interpreters slot" if value is None else MULTIPLE_INTERPRETERS_VALUES.get(value, value)
        return True, f"multi-phase init without own-GIL support ({what})", None
    if not multi and not single:
        library = mypyc_library(path)
        if library:
            from importlib.machinery import ExtensionFileLoader, PathFinder

            spec = PathFinder.find_spec(library)  # the shim imports it as a top-level module
            if spec is not None and isinstance(spec.loader, ExtensionFileLoader) and spec.origin:
                if spec.origin not in _library_single_phase:  # one library serves every shim of a group
                    lib_undefined, _ = elf_symbols(spec.origin)
                    _library_single_phase[spec.origin] = ("PyModule_Create2" in lib_undefined
                                                          and "PyModuleDef_Init" not in lib_undefined)
                if _library_single_phase[spec.origin]:
                    return True, f"mypyc shim; its shared library {library} is single-phase init", library
    return False, "its symbols do not tell single-phase from multi-phase init", None


def mypyc_library(path):
    """The ``<hash>__mypyc`` library a mypyc shim imports (named in its strings), or None. Shims are a
    few kB; larger files are not shims."""
    import re

    if os.path.getsize(path) > 1 << 20:
        return None
    with open(path, "rb") as f:
        found = re.search(rb"\x00([A-Za-z0-9_]+__mypyc)\x00", f.read())
    return found.group(1).decode() if found else None


def elf_symbols(path):
    """(undefined, defined): the names in an ELF shared object's dynamic symbol table (.dynsym): those it
    imports and those it exports. Raises ValueError for a file that is not ELF or has no .dynsym."""
    import struct

    with open(path, "rb") as f:
        ident = f.read(16)
        if len(ident) < 16 or ident[:4] != b"\x7fELF" or ident[4] not in (1, 2) or ident[5] not in (1, 2):
            raise ValueError("not an ELF file")
        wide, order = ident[4] == 2, "<" if ident[5] == 1 else ">"
        if wide:
            header, section, symbol, shndx_at = "HHIQQQIHHHHHH", "IIQQQQIIQQ", "IBBHQQ", 3
        else:
            header, section, symbol, shndx_at = "HHIIIIIHHHHHH", "IIIIIIIIII", "IIIBBH", 5
        fields = struct.unpack(order + header, f.read(struct.calcsize(order + header)))
        shoff, shentsize, shnum = fields[5], fields[10], fields[11]
        if not shoff or not shnum or shentsize < struct.calcsize(order + section):
            raise ValueError("no section headers")
        f.seek(shoff)
        table = f.read(shentsize * shnum)
        sections = [struct.unpack_from(order + section, table, i * shentsize) for i in range(shnum)]
        # A section: name, type, flags, addr, offset, size, link, info, addralign, entsize.
        dynsym = next((s for s in sections if s[1] == 11), None)  # SHT_DYNSYM
        if dynsym is None or dynsym[6] >= len(sections):
            raise ValueError("no dynamic symbol table")
        strtab = sections[dynsym[6]]
        f.seek(dynsym[4])
        symbols = f.read(dynsym[5])
        f.seek(strtab[4])
        strings = f.read(strtab[5])
    size = struct.calcsize(order + symbol)
    undefined, defined = set(), set()
    for offset in range(size, len(symbols) - size + 1, size):  # entry 0 is the null symbol
        entry = struct.unpack_from(order + symbol, symbols, offset)
        start = entry[0]
        end = strings.find(b"\x00", start)
        sym = strings[start:end].decode(errors="replace")
        if sym:
            (undefined if entry[shndx_at] == 0 else defined).add(sym)  # SHN_UNDEF
    return undefined, defined


def module_def_slots(address):
    """(m_name, [(slot, value)] or None) of the PyModuleDef at ``address``; None for no slots
    (single-phase). Raises ValueError if the object there is not a PyModuleDef."""
    import ctypes

    class Slot(ctypes.Structure):
        _fields_ = [("slot", ctypes.c_int), ("value", ctypes.c_void_p)]

    class ModuleDef(ctypes.Structure):
        # PyModuleDef: PyModuleDef_Base (PyObject_HEAD, m_init, m_index, m_copy), then the fields below.
        _fields_ = [("head", ctypes.c_byte * object.__basicsize__), ("m_init", ctypes.c_void_p),
                    ("m_index", ctypes.c_ssize_t), ("m_copy", ctypes.c_void_p), ("m_name", ctypes.c_char_p),
                    ("m_doc", ctypes.c_void_p), ("m_size", ctypes.c_ssize_t), ("m_methods", ctypes.c_void_p),
                    ("m_slots", ctypes.POINTER(Slot))]

    # A definition is an object of type PyModuleDef_Type (its PyObject_HEAD ends with ob_type).
    expected = ctypes.addressof(ctypes.c_char.in_dll(ctypes.pythonapi, "PyModuleDef_Type"))
    ob_type = ctypes.c_void_p.from_address(address + object.__basicsize__ - ctypes.sizeof(ctypes.c_void_p)).value
    if ob_type != expected:
        raise ValueError("not a PyModuleDef object")
    definition = ModuleDef.from_address(address)
    name = (definition.m_name or b"").decode(errors="replace")
    if not definition.m_slots:
        return name, None
    slots, i = [], 0
    while definition.m_slots[i].slot:
        slots.append((definition.m_slots[i].slot, definition.m_slots[i].value or 0))
        i += 1
    return name, slots


def declared_multiple_interpreters(path, short):
    """The Py_mod_multiple_interpreters value a multi-phase extension declares, or None if it has no such
    slot: its PyInit_<short> is called (it returns the module's definition, running none of its code)."""
    import ctypes

    library = ctypes.PyDLL(path, mode=sys.getdlopenflags())  # the flags CPython's own import uses
    init = getattr(library, "PyInit_" + short)
    init.restype, init.argtypes = ctypes.c_void_p, []
    address = init()
    if not address:
        raise ValueError(f"PyInit_{short} returned NULL")
    _name, slots = module_def_slots(address)
    if slots is None:
        raise ValueError("its definition has no slots")
    return next((value for slot, value in slots if slot == PY_MOD_MULTIPLE_INTERPRETERS), None)


# ---- In the pool's process (main interpreter) -----------------------------------------------------------


class Record:
    """What one pool's workers loaded from source: module name -> why."""

    def __init__(self, pool_name):
        self.pool_name = pool_name
        self.modules = {}


class Collector:
    """Reads the workers' reports from a pipe (workers of every pool write one line per module; a write
    under PIPE_BUF is atomic) on a daemon thread, so that each load is logged as it happens, and on
    demand (stats()), so that a report written before a task returned is seen by the stats taken
    after it. One per process; a forked child makes its own."""

    def __init__(self):
        import itertools
        import threading
        import weakref

        self.pid = os.getpid()
        self.read_fd, self.write_fd = os.pipe()
        os.set_blocking(self.read_fd, False)
        self.lock = threading.Lock()
        self.records = weakref.WeakValueDictionary()  # token -> Record
        self.tokens = itertools.count(1).__next__
        self.logged = set()  # module names logged in this process
        self.buffer = b""
        self.thread = threading.Thread(target=self._run, name="manygil-source-fallback", daemon=True)
        self.thread.start()

    def register(self, pool_name):
        """A new pool's record and the (fd, token) its workers report to."""
        record = Record(pool_name)
        with self.lock:
            token = self.tokens()
            self.records[token] = record
        return record, (self.write_fd, token)

    def _run(self):
        import select

        while True:
            try:
                select.select([self.read_fd], [], [])
            except (OSError, ValueError):
                return
            self.drain()

    def drain(self):
        """Reads what the workers wrote so far and files it; logs modules seen for the first time."""
        new = []
        with self.lock:
            while True:
                try:
                    chunk = os.read(self.read_fd, 65536)
                except BlockingIOError:
                    break
                except OSError:
                    return
                if not chunk:
                    break
                self.buffer += chunk
            *lines, self.buffer = self.buffer.split(b"\n")
            for line in lines:
                token, _, rest = line.decode(errors="replace").partition("\t")
                name, _, why = rest.partition("\t")
                record = self.records.get(int(token)) if token.isdigit() else None
                if record is None or not name:
                    continue
                record.modules.setdefault(name, why)
                if name not in self.logged:
                    self.logged.add(name)
                    new.append((name, why, record.pool_name))
        if new:
            import logging

            logger = logging.getLogger("manygil")
            for name, why, pool_name in new:
                logger.info("%s: loaded from its Python source in the workers of %s, because its compiled "
                            "module refuses own-GIL interpreters (%s); it runs slower than compiled. "
                            "Pool(source_fallback=False) or %s=0 turns this off.", name, pool_name, why, ENV)


_collector = None


def collector():
    """This process's Collector (made on first use, and again in a forked child)."""
    global _collector
    if _collector is not None and _collector.pid != os.getpid():
        for fd in (_collector.read_fd, _collector.write_fd):  # the parent's pipe, inherited
            try:
                os.close(fd)
            except OSError:
                pass
        _collector = None
    if _collector is None:
        _collector = Collector()
    return _collector
