"""Parallel Python UDFs for DuckDB: the function runs on a manygil pool's own-GIL interpreters.

DuckDB calls an ``type="arrow"`` UDF once per chunk (2,048 rows) from its pipeline threads, holding the
GIL, so Python UDFs never run in parallel. A UDF registered here only hands the chunk's columns over
(the Arrow PyCapsule interface; the workers read them in place, with no pyarrow in their interpreters)
and waits with the GIL released while workers run the function, row by row (``mode="row"``) or on
whole slices of columns (``mode="batch"``); DuckDB's other threads meanwhile hand their chunks to the
other workers.

    import duckdb, manygil.duckdb

    def score(x: int, label: str) -> int: ...      # in the script, a module, a notebook; or a lambda
    con = duckdb.connect()
    manygil.duckdb.register(con, "score", score, ["BIGINT", "VARCHAR"], "BIGINT")
    con.sql("SELECT sum(score(x, name)) FROM t")

The function travels as Pool.submit sends it: by name when the workers can import it (the main
script's functions by re-running the script as ``__mp_main__``: keep its queries under ``if __name__
== "__main__":``), otherwise by value with cloudpickle (lambdas, closures, ``functools.partial``,
functions of a notebook or the REPL). DuckDB 1.x (1.5) and 2.x are supported.

Types: every DuckDB type whose Arrow form manygil reads, with NULLs at any level: BOOLEAN, the signed
and unsigned integers, HUGEINT/UHUGEINT, FLOAT, DOUBLE, DECIMAL, VARCHAR, BLOB, UUID, DATE, TIME,
TIMESTAMP (also WITH TIME ZONE and the _S/_MS/_NS forms), INTERVAL, and LIST, fixed-size ARRAY, STRUCT
and MAP of these to any depth. ENUM and UNION (dictionary and union arrays) are refused at
``register``, naming the type. Import in the main interpreter (DuckDB and pyarrow do not load in
own-GIL interpreters).
"""

from __future__ import annotations

import inspect
import threading
import weakref

from . import _core
from ._pool import Pool

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from typing import Any

__all__ = ["register", "udf", "shared_pool"]

_shared: Pool | None = None
_shared_lock = threading.Lock()


def shared_pool() -> Pool:
    """The pool UDFs use when none is given: one per process, sized to the usable CPUs."""
    global _shared
    with _shared_lock:
        if _shared is None or _shared._core_shut_down():
            _shared = Pool(thread_name_prefix="manygil.duckdb")  # as many workers as usable CPUs
        return _shared


def _arrow_format(con: Any, duckdb_type: object, what: str) -> str:
    """The Arrow type DuckDB exports for ``duckdb_type`` on ``con`` (so its settings apply: large
    buffers, time zone), as _udf_map's result format; TypeError naming the type when it is not a
    DuckDB type or manygil.duckdb cannot read or write it."""
    import duckdb

    name = str(duckdb_type)
    try:
        exported = con.sql(f"SELECT NULL::{name} AS x").arrow()  # a Table (1.x) or a RecordBatchReader (2.x)
        arrow_type = exported.schema.field(0).type
    except duckdb.Error as e:
        raise TypeError(f"{what}: {name!r} is not a DuckDB type ({e})") from None
    try:
        return _core._arrow_result_format(arrow_type)
    except TypeError as e:
        raise TypeError(f"{what}: DuckDB type {name} is not supported by manygil.duckdb "
                        f"(its Arrow form {arrow_type}: {e})") from None


def _function_spec(fn: Callable[..., Any]) -> str | tuple[bytes, str]:
    """How ``fn`` travels to the workers, as Pool.submit sends it: "module:qualname" for a function they
    can import (one of the main script's as "__mp_main__:qualname"), else pickled by value with
    cloudpickle (lambdas, closures, functools.partial, functions of a notebook, the REPL or ``python
    -c``). TypeError, naming the culprit, for what cannot travel."""
    from . import _shipping

    if not callable(fn):
        raise TypeError(f"{fn!r} is not callable")
    if getattr(fn, "__module__", None) in ("__main__", "__mp_main__"):  # also the script re-run by spawn
        # By value first: DuckDB scripts seldom guard their queries with `if __name__ == "__main__":`,
        # and re-running the script in every worker would run them there (and load its data again).
        # What cannot be pickled (a global connection...) goes by name, the script re-run as Pool does.
        try:
            return (_shipping.dumps(fn), f"{_shipping._describe(fn)} (sent by value)")
        except Exception:  # noqa: BLE001 - callable_spec below says why if the name cannot serve either
            pass
    spec = _shipping.callable_spec(fn)
    if isinstance(spec, tuple):  # a method of a SharedBuffer, Channel, Lock...: no UDF of its own
        raise TypeError(f"{_shipping._describe(fn)} is a method of a shared object, which cannot be a UDF: "
                        "wrap the call in a function")
    if isinstance(spec, bytes):
        return (spec, f"{_shipping._describe(fn)} (sent by value)")
    return spec


def _one_array(column: Any) -> Any:
    """DuckDB's argument as one array: a ChunkedArray's only chunk as it is (combine_chunks would copy
    it), several chunks concatenated."""
    if not hasattr(column, "num_chunks"):
        return column
    return column.chunk(0) if column.num_chunks == 1 else column.combine_chunks()


# The map calls in flight, by the connection their function was registered on: its interrupt() ends
# them (see register). A WeakKeyDictionary, so that a closed connection's entry goes with it.
_in_flight: weakref.WeakKeyDictionary[Any, set[Any]] = weakref.WeakKeyDictionary()
_in_flight_lock = threading.Lock()
_patched_interrupt: Any = None


def _hook_interrupt(connection_type: type) -> None:
    """Makes ``DuckDBPyConnection.interrupt`` also stop the workers' slices of the connection's
    manygil UDF calls: DuckDB checks for an interrupt only between chunks, and a chunk's UDF call in
    workers may run for long. Once per process; DuckDB's own interrupt runs first, unchanged."""
    global _patched_interrupt
    with _in_flight_lock:
        if _patched_interrupt is not None or getattr(connection_type, "interrupt", None) is None:
            return
        original = connection_type.interrupt

        def interrupt(self: Any) -> None:
            original(self)
            with _in_flight_lock:
                stops = list(_in_flight.get(self, ()))
            for stop in stops:
                stop.request("the DuckDB query was interrupted (interrupt() on its connection)")

        interrupt.__doc__ = original.__doc__
        interrupt.__wrapped__ = original  # type: ignore[attr-defined]
        connection_type.interrupt = interrupt
        _patched_interrupt = interrupt


# Crash fence, DuckDB 1.x (seen on 1.5.6; 2.0 refuses the close instead): closing a connection while
# a cursor's query still calls a UDF drops DuckDB's reference to the callable and then calls it, freed
# (a segfault; DuckDB's own create_function with a lambda does it too). So on 1.x every wrapper
# registered here is kept for the life of the process (a closure of a few hundred bytes each).
_kept_wrappers: list[Any] = []


def _keep_if_duckdb_may_free_it(wrapper: Any) -> None:
    import duckdb

    try:
        major = int(duckdb.__version__.split(".")[0])
    except (AttributeError, ValueError):
        major = 1
    if major < 2:
        _kept_wrappers.append(wrapper)


def _calls_of(con: Any) -> set[Any]:
    with _in_flight_lock:
        try:
            return _in_flight.setdefault(con, set())
        except TypeError:  # not weak-referenceable (a stand-in connection): interrupt() cannot reach it
            return set()


def register(con: Any, name: str, fn: Callable[..., Any], parameters: Sequence[object], return_type: object, *,
             pool: Pool | None = None, mode: str = "row", null_handling: str = "default",
             side_effects: bool = False) -> None:
    """Registers ``fn`` as the SQL function ``name`` on connection ``con``, run on ``pool`` (default:
    ``shared_pool()``).

    ``parameters`` and ``return_type`` are DuckDB types, as strings (``"DECIMAL(10,2)"``,
    ``"STRUCT(a INTEGER, b VARCHAR[])"``) or DuckDB's type objects (``duckdb.sqltypes.BIGINT``,
    ``duckdb.list_type(...)``; ``duckdb.typing`` is gone since 1.5).

    ``mode="row"`` calls ``fn(*values)`` per row with the Python values DuckDB's own native UDFs
    get: bool, int (also HUGEINT), float, ``decimal.Decimal`` at the column's scale, str (VARCHAR,
    and UUID: DuckDB hands it to Arrow as text), bytes, ``datetime.date``, ``datetime.time``,
    ``datetime.datetime`` (aware, in UTC, WITH TIME ZONE), ``datetime.timedelta`` (INTERVAL, a month
    as 30 days), list (LIST, ARRAY), dict (STRUCT: field -> value; MAP: key -> value). It returns
    the same kinds; also an int or float for a DECIMAL (rounded half away from zero to the scale, as
    DuckDB rounds), a tuple for a STRUCT (every field in order) or a LIST, a list of (key, value)
    pairs for a MAP; a STRUCT dict may leave fields out (NULL). With ``null_handling="default"`` a row
    with a NULL argument is NULL without calling ``fn`` (SQL's rule); with ``"special"`` ``fn`` is
    called with None. A None result is NULL, at any level.

    ``mode="batch"`` calls ``fn(*columns)`` once per chunk, or per slice of one when the pool splits
    a chunk across its workers (so ``fn`` must treat rows independently), and ``fn`` returns a
    sequence with one value per row (None: NULL); a memoryview or ``array.array`` in the return
    type's own format (``'q'`` for BIGINT, ...) is read without a Python object per value. A column
    is:

    - integers and floats: a read-only typed memoryview (``'q'`` for BIGINT, ``'d'`` for DOUBLE, ...)
      over DuckDB's own buffer, no copy; DATE as ``'i'`` days since 1970-01-01 and TIMESTAMP as
      ``'q'`` microseconds since 1970-01-01 (results may be such ints, or date/datetime objects);
    - TIME: a ``'q'`` memoryview of microseconds since midnight; TIMESTAMP WITH TIME ZONE: ``'q'``
      microseconds since 1970-01-01 UTC;
    - BOOLEAN: a ``'?'`` memoryview; every other type (VARCHAR, BLOB, UUID, DECIMAL, HUGEINT,
      INTERVAL, LIST, STRUCT, MAP): a list of the row-mode values, None at NULL.

    With ``null_handling="default"`` rows with a NULL argument are NULL whatever ``fn`` returns
    there, and their memoryview values are unspecified. With ``"special"`` each column arrives as a
    ``(values, valid)`` pair, ``valid`` a ``'?'`` memoryview (True: not NULL) or None when the chunk
    has no NULL. A view ``fn`` keeps after returning stays valid (it keeps the chunk's memory).

    ``parameters`` may be empty: DuckDB gives an Arrow UDF without arguments no row count, so such a
    function runs as a native DuckDB UDF, one worker call per row.

    An exception in ``fn`` fails the query with its type, message and the worker's traceback; a
    result of the wrong type names the row, a batch result of the wrong length the rows.

    ``con.interrupt()`` (``DuckDBPyConnection.interrupt``, wrapped at the first ``register``) also
    stops the workers' slices of the calls in flight for the functions registered on ``con``: the
    query then fails at once with a ``duckdb.Error`` whose message names ``manygil.Interrupted``
    (DuckDB itself checks for an interrupt only between chunks). A slice inside C code (time.sleep, a
    blocking read) ends when that returns. DuckDB's functions belong to the database, so a cursor's
    query calling a function registered on ``con`` is stopped by ``con.interrupt()`` too, and only
    between chunks by the cursor's own ``interrupt()``. Ctrl-C likewise ends the query at once when
    the main thread waits in one of these calls, as it does whenever DuckDB runs the query's pipeline
    on the calling thread (always at ``SET threads = 1``, most of the time otherwise): the query
    fails with a ``duckdb.Error`` naming KeyboardInterrupt. Signals reach Python only on the main
    thread, so while only DuckDB's own threads are in UDF calls, DuckDB notices Ctrl-C when the
    query ends (as with its own UDFs).

    ``fn`` travels as ``Pool.submit`` sends it: by name if the workers can import it (one of the main
    script by re-running the script in the workers as ``__mp_main__``: keep the script's queries
    under ``if __name__ == "__main__":``), otherwise pickled by value with cloudpickle (lambdas,
    closures, ``functools.partial``, functions of a notebook, the REPL or ``python -c``).

    Raises TypeError for an unsupported type and for a function that cannot travel (naming the
    closure variable or global that cannot be pickled), ValueError for an unknown mode or
    null_handling.
    """
    if mode not in ("row", "batch"):
        raise ValueError(f"mode must be 'row' or 'batch', not {mode!r}")
    if null_handling not in ("default", "special"):
        raise ValueError(f"null_handling must be 'default' or 'special', not {null_handling!r}")
    parameters = list(parameters)
    for i, p in enumerate(parameters):
        _arrow_format(con, p, f"parameter {i}")
    result_format = _arrow_format(con, return_type, "return type")
    spec = _function_spec(fn)
    chosen = pool if pool is not None else shared_pool()
    try:
        threads = int(con.sql("SELECT current_setting('threads')").fetchall()[0][0])
    except Exception:  # noqa: BLE001 - an old DuckDB without the setting: nothing to advise
        threads = 0
    if threads and threads < chosen.max_workers and parameters:
        import warnings

        warnings.warn(f"manygil.duckdb: DuckDB runs {threads} thread(s) but the pool has {chosen.max_workers} "
                      f"workers; DuckDB's threads bound how many chunks are in UDFs at once "
                      f"(SET threads = {chosen.max_workers})", stacklevel=2)

    if not parameters:
        # DuckDB gives an Arrow UDF without arguments no way to know the chunk's row count, so this
        # one is a native UDF: one worker call per row (no parallelism within a query; several
        # DuckDB threads still call at once).
        def run0():  # type: ignore[no-untyped-def]  # DuckDB evaluates annotations it finds
            return chosen.submit(fn).result()

        run0.__name__ = name
        _keep_if_duckdb_may_free_it(run0)
        con.create_function(name, run0, [], return_type, type="native", null_handling="special",
                            side_effects=side_effects)
        return

    skip_nulls = null_handling == "default"
    batch = mode == "batch"
    in_flight = _calls_of(con)
    _hook_interrupt(type(con))

    try:
        connection = weakref.ref(con)
    except TypeError:  # not weak-referenceable: Ctrl-C then ends only the main thread's calls
        connection = lambda: None  # noqa: E731

    def run(*columns):  # type: ignore[no-untyped-def]  # DuckDB evaluates annotations it finds
        arrays = [_one_array(c) for c in columns]
        stop = _core.UdfStop()
        with _in_flight_lock:
            in_flight.add(stop)
        try:
            return _core._udf_map(chosen._core, spec, arrays, result_format, skip_nulls, batch, stop)
        except KeyboardInterrupt:
            # Ctrl-C while the main thread waited here: stop the query's calls on DuckDB's other
            # threads too, and DuckDB itself, so that the script ends now rather than chunks later.
            with _in_flight_lock:
                others = list(in_flight)
            for other in others:
                other.request("KeyboardInterrupt in the main thread")
            live = connection()
            if live is not None:
                live.interrupt()
            raise
        finally:
            with _in_flight_lock:
                in_flight.discard(stop)

    run.__name__ = name
    # DuckDB (1.x and 2.x) counts the parameters of the callable it is given (inspect.signature):
    # one positional parameter per SQL argument.
    run.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [inspect.Parameter(f"arg{i}", inspect.Parameter.POSITIONAL_ONLY) for i in range(len(parameters))])
    _keep_if_duckdb_may_free_it(run)
    con.create_function(name, run, parameters, return_type, type="arrow", null_handling="special",
                        side_effects=side_effects)


def udf(con: Any, parameters: Sequence[object], return_type: object, *, name: str | None = None,
        **options: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator form of ``register``: ``@manygil.duckdb.udf(con, ["BIGINT"], "BIGINT")``. The
    function stays callable from Python as it was."""
    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        register(con, name or fn.__name__, fn, parameters, return_type, **options)
        return fn

    return decorate
