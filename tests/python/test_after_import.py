"""manygil._after_import: hooks that run once a module is imported, without importing it up front."""

import subprocess
import sys


def test_hooks_run_after_the_first_import_of_source_built_in_and_already_imported_modules():
    # In a fresh process: the modules involved must not be imported yet.
    proc = subprocess.run([sys.executable, "-c", """
import sys
from manygil._after_import import after_import
seen = []
assert "_pydatetime" not in sys.modules and "_bisect" not in sys.modules
after_import("_pydatetime", lambda m: seen.append((m.__name__, hasattr(m, "date"))))  # a source file
after_import("_bisect", lambda m: seen.append((m.__name__, hasattr(m, "bisect_right"))))     # built in or extension
after_import("sys", lambda m: seen.append(("sys", True)))                              # imported already
assert seen == [("sys", True)]
import _pydatetime, _bisect
import _pydatetime  # a second import runs nothing more
# `import manygil` watches multiprocessing.context (the fork fence): the finder leaves once it is seen.
watching = any(type(f).__name__ == "_AfterImport" for f in sys.meta_path)
import multiprocessing
print(sorted(seen), watching, any(type(f).__name__ == "_AfterImport" for f in sys.meta_path),
      multiprocessing.get_start_method())
"""], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "[('_bisect', True), ('_pydatetime', True), ('sys', True)] True False forkserver\n"
