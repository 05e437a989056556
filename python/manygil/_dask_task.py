"""What manygil.dask runs inside a worker's interpreter: kept apart from manygil.dask, which imports
distributed (and so psutil, which refuses own-GIL interpreters)."""

from __future__ import annotations

import time
from typing import Any


def run_task(task: Any, data: dict[Any, Any]) -> tuple[Any, float, float]:
    """Runs one Dask task (a dask._task_spec node) on its input data: its result and wall-clock
    start and stop times."""
    start = time.time()
    result = task(data)
    return result, start, time.time()
