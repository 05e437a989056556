"""after_import(name, hook): run code once a module is imported, without importing it up front.

Workers use it to adjust threading and multiprocessing only if a task imports them; the main
interpreter, to adjust multiprocessing once pools exist.
"""

import sys


class _AfterImport:
    """A sys.meta_path finder that finds nothing itself: for the modules it watches, it asks the
    finders behind it for the spec and makes the module's loader call a hook once the module has
    executed. It leaves sys.meta_path when nothing is left to watch."""

    def __init__(self):
        self.hooks = {}

    def find_spec(self, name, path=None, target=None):
        hooks = self.hooks.get(name)
        if hooks is None:
            return None
        spec = None
        for finder in sys.meta_path:
            if finder is not self and hasattr(finder, "find_spec"):
                spec = finder.find_spec(name, path, target)
                if spec is not None:
                    break
        if spec is None or not hasattr(spec.loader, "exec_module"):
            return spec
        self._forget(name)
        loader = spec.loader
        if isinstance(loader, type):  # frozen and built-in modules: one loader class for all of them
            spec.loader = loader = _LoaderOf(loader)
        run = loader.exec_module  # a file's spec has a loader object of its own: patched in place

        def exec_module(module):
            run(module)
            for hook in hooks:
                hook(module)

        loader.exec_module = exec_module
        return spec

    def _forget(self, name):
        del self.hooks[name]
        if not self.hooks and self in sys.meta_path:
            sys.meta_path.remove(self)


class _LoaderOf:
    """Stands for a loader class (shared by many modules) in one module's spec."""

    def __init__(self, loader):
        self._loader = loader

    def __getattr__(self, name):
        return getattr(self._loader, name)


_finder = _AfterImport()


def after_import(name, hook):
    """Calls hook(module) once module `name` is imported: now if it already is, else right after it
    executes for the first time."""
    module = sys.modules.get(name)
    if module is not None:
        hook(module)
        return
    _finder.hooks.setdefault(name, []).append(hook)
    if _finder not in sys.meta_path:
        sys.meta_path.insert(0, _finder)
