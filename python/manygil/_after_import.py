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
        run = spec.loader.exec_module  # each module's spec has a loader object of its own

        def exec_module(module):
            run(module)
            for hook in hooks:
                hook(module)

        spec.loader.exec_module = exec_module
        return spec

    def _forget(self, name):
        del self.hooks[name]
        if not self.hooks and self in sys.meta_path:
            sys.meta_path.remove(self)


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
