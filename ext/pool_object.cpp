#include "pool_object.hpp"

#include <algorithm>
#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

#include "manygil/errors.hpp"
#include "manygil/pool.hpp"
#include "codec/payload_python.hpp"
#include "exception_translation.hpp"
#include "module_state.hpp"
#include "py_task_job.hpp"
#include "pytypes/blocking_call.hpp"
#include "task_handle.hpp"
#include "without_gil.hpp"

namespace manygil::ext {

namespace {

struct PoolObject {
    PyObject_HEAD
    Pool* pool;            // owned; moved to the graveyard on dealloc
    PyObject* pickler;     // obj -> bytes, for arguments of non-native types
    PyTypeObject* handle_type;
};

// Pools whose Python object died before they were shut down and joined. Joining there would block
// with the GIL held while their workers may need it, so they finish in the background and are
// joined by finalize_pools().
std::mutex g_graveyard_mu;
std::vector<std::unique_ptr<Pool>> g_graveyard;

PoolObject* as_pool(PyObject* self) { return reinterpret_cast<PoolObject*>(self); }

// A refused submission: concurrent.futures' message after shutdown, else the translator's exception.
PyObject* raise_submit_error(const std::exception& e) {
    if (dynamic_cast<const ShutdownError*>(&e)) {
        PyErr_SetString(PyExc_RuntimeError, "cannot schedule new futures after shutdown");
        return nullptr;
    }
    return raise_error(e);
}

// Encodes with the pickle fallback; the path is reported from `root` (e.g. "args[1]['k']").
detail::Payload convert(PoolObject* self, PyObject* obj, const char* root) {
    try {
        return detail::encode_python(obj, self->pickler);
    } catch (ConversionError& e) {
        e.prepend_path(root);
        throw;
    }
}

// Posts a job for `future` (setting future._handle first, so cancel() can never miss it).
PyObject* post(PoolObject* self, PyTaskJob::Kind kind, CallableSpec spec, detail::Payload args,
               detail::Payload kwargs, bool star, PyObject* future, Timeout timeout = std::nullopt,
               bool counted = true) {
    std::optional<detail::TaskState::Clock::duration> limit;
    if (timeout) limit = std::chrono::duration_cast<detail::TaskState::Clock::duration>(*timeout);
    auto state = detail::new_task_state(*self->pool, limit);
    PyObject* handle = new_task_handle(self->handle_type, state);
    if (!handle) return nullptr;
    if (PyObject_SetAttrString(future, "_handle", handle) < 0) {
        Py_DECREF(handle);
        return nullptr;
    }
    try {
        auto job = std::make_unique<PyTaskJob>(kind, std::move(spec), std::move(args), std::move(kwargs), star,
                                               std::move(state), Py_NewRef(future));
        if (!counted) job->set_uncounted();
        self->pool->post(std::move(job));
    } catch (const std::exception& e) {
        Py_DECREF(handle);
        return raise_submit_error(e);
    }
    return handle;
}

bool check_open(PoolObject* self) {
    if (forked_child()) {
        PyErr_SetString(PyExc_RuntimeError,
                        "manygil pools do not survive os.fork(): their workers stayed in the parent; create a new "
                        "pool in the child");
        return false;
    }
    if (self->pool) return true;
    PyErr_SetString(PyExc_RuntimeError, "manygil pool is not initialised");
    return false;
}

// Pool(workers: int, init_source: str, pickler, name: str = "pool", reuse: bool = False,
//      replace_stuck_after: float | None = None, max_tasks: int = 0, max_tasks_jitter: int = 0)
int pool_init(PyObject* op, PyObject* args, PyObject* kwargs) {
    auto* self = as_pool(op);
    Py_ssize_t workers;
    const char* init_source;
    PyObject* pickler;
    const char* name = "pool";
    int reuse = 0;
    PyObject* stuck_after = Py_None;
    Py_ssize_t max_tasks = 0, max_tasks_jitter = 0;
    int pin = 0;
    static const char* kw[] = {"workers", "init_source", "pickler", "name", "reuse", "replace_stuck_after",
                               "max_tasks", "max_tasks_jitter", "pin_workers", nullptr};
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "nsO|spOnnp", const_cast<char**>(kw), &workers, &init_source,
                                     &pickler, &name, &reuse, &stuck_after, &max_tasks, &max_tasks_jitter, &pin)) {
        return -1;
    }
    if (max_tasks < 0 || max_tasks_jitter < 0) {
        PyErr_SetString(PyExc_ValueError, "max_tasks and max_tasks_jitter must be >= 0");
        return -1;
    }
    std::optional<std::chrono::milliseconds> replace_stuck_after;
    if (stuck_after != Py_None) {
        double seconds = PyFloat_AsDouble(stuck_after);
        if (seconds == -1.0 && PyErr_Occurred()) return -1;
        if (!(seconds > 0)) {
            PyErr_SetString(PyExc_ValueError, "replace_stuck_after must be > 0 or None");
            return -1;
        }
        replace_stuck_after = std::chrono::milliseconds(std::max<long long>(1, static_cast<long long>(seconds * 1000)));
    }
    if (self->pool) {
        PyErr_SetString(PyExc_RuntimeError, "Pool.__init__ called twice");
        return -1;
    }
    if (workers <= 0) {
        PyErr_SetString(PyExc_ValueError, "max_workers must be greater than 0");
        return -1;
    }
    if (PyInterpreterState_Get() != PyInterpreterState_Main()) {
        PyErr_SetString(PyExc_RuntimeError,
                        "manygil pools can only be created in the main interpreter: this code runs inside a "
                        "manygil worker, and nested pools are not supported");
        return -1;
    }
    Pool* pool = nullptr;
    std::string error;
    std::string source(init_source), pool_name(name);
    // Without the GIL: if starting fails half-way, already started workers (which take the main GIL
    // to create their interpreters) are joined.
    Py_BEGIN_ALLOW_THREADS
    try {
        pool = new Pool(runtime(), {.workers = static_cast<std::size_t>(workers),
                                    .initializer = Initializer::source(std::move(source)),
                                    .name = pool_name,
                                    .reuse_interpreters = reuse != 0,
                                    .replace_stuck_after = replace_stuck_after,
                                    .on_stuck = {},
                                    .max_tasks_per_worker = static_cast<std::size_t>(max_tasks),
                                    .max_tasks_jitter = static_cast<std::size_t>(max_tasks_jitter),
                                    .pin_workers = pin != 0});
    } catch (const std::exception& e) {
        error = e.what();
    }
    Py_END_ALLOW_THREADS
    if (!pool) {
        PyErr_Format(PyExc_RuntimeError, "cannot start a manygil pool: %s", error.c_str());
        return -1;
    }
    self->pool = pool;
    self->pickler = Py_NewRef(pickler);
    self->handle_type = reinterpret_cast<PyTypeObject*>(Py_NewRef(state_of_type(Py_TYPE(op))->task_handle_type));
    return 0;
}

void pool_dealloc(PyObject* op) {
    auto* self = as_pool(op);
    PyTypeObject* type = Py_TYPE(op);
    PyObject_GC_UnTrack(op);
    if (self->pool && forked_child()) {
        self->pool = nullptr;  // its threads and interpreters do not exist here: leak, never join
    }
    if (self->pool) {
        std::unique_ptr<Pool> pool(self->pool);
        self->pool = nullptr;
        try {
            pool->shutdown(/*wait=*/false, /*cancel_pending=*/false);  // queued work still runs
        } catch (...) {
        }
        std::lock_guard lock(g_graveyard_mu);
        // Pools whose workers have all ended join at once: reap them so dropped pools do not pile up.
        std::erase_if(g_graveyard, [](const std::unique_ptr<Pool>& p) { return p->finished(); });
        g_graveyard.push_back(std::move(pool));
    }
    Py_CLEAR(self->pickler);
    Py_CLEAR(self->handle_type);
    type->tp_free(op);
    Py_DECREF(type);
}

int pool_traverse(PyObject* op, visitproc visit, void* arg) {
    auto* self = as_pool(op);
    Py_VISIT(Py_TYPE(op));
    Py_VISIT(self->pickler);
    Py_VISIT(self->handle_type);
    return 0;
}

// submit(future, spec, args: tuple, kwargs: dict | None[, timeout: float | None[, counted: bool]]) -> TaskHandle
// counted False: the task does not count toward max_tasks (Job::counts_as_task; `manygil serve`'s probe).
PyObject* pool_submit(PyObject* op, PyObject* const* argv, Py_ssize_t argc) {
    auto* self = as_pool(op);
    if (argc < 4 || argc > 6) return PyErr_Format(PyExc_TypeError, "submit() takes 4 to 6 arguments (%zd given)", argc);
    Timeout timeout;
    if (argc >= 5 && !detail::parse_timeout(argv[4], timeout, detail::TimeoutRule::Positive)) return nullptr;
    int counted = argc == 6 ? PyObject_IsTrue(argv[5]) : 1;
    if (counted < 0) return nullptr;
    if (!check_open(self)) return nullptr;
    CallableSpec spec;
    if (!parse_spec(argv[1], spec)) return nullptr;
    if (!PyTuple_Check(argv[2])) return PyErr_Format(PyExc_TypeError, "submit(): args must be a tuple");
    try {
        detail::Payload args = convert(self, argv[2], "args");
        detail::Payload kwargs = argv[3] == Py_None ? detail::Payload{} : convert(self, argv[3], "kwargs");
        return post(self, PyTaskJob::Kind::Call, std::move(spec), std::move(args), std::move(kwargs), false, argv[0],
                    timeout, counted != 0);
    } catch (const std::exception& e) {
        return raise_submit_error(e);
    }
}

// submit_chunk(future, spec, items: list, star: bool) -> TaskHandle
PyObject* pool_submit_chunk(PyObject* op, PyObject* const* argv, Py_ssize_t argc) {
    auto* self = as_pool(op);
    if (argc != 4) return PyErr_Format(PyExc_TypeError, "submit_chunk() takes 4 arguments (%zd given)", argc);
    if (!check_open(self)) return nullptr;
    CallableSpec spec;
    if (!parse_spec(argv[1], spec)) return nullptr;
    if (!PyList_Check(argv[2])) return PyErr_Format(PyExc_TypeError, "submit_chunk(): items must be a list");
    int star = PyObject_IsTrue(argv[3]);
    if (star < 0) return nullptr;
    try {
        detail::Payload items = convert(self, argv[2], "items");
        return post(self, PyTaskJob::Kind::Chunk, std::move(spec), std::move(items), {}, star != 0, argv[0]);
    } catch (const std::exception& e) {
        return raise_submit_error(e);
    }
}

// submit_exec(future, source: str) -> TaskHandle
PyObject* pool_submit_exec(PyObject* op, PyObject* const* argv, Py_ssize_t argc) {
    auto* self = as_pool(op);
    if (argc != 2) return PyErr_Format(PyExc_TypeError, "submit_exec() takes 2 arguments (%zd given)", argc);
    if (!check_open(self)) return nullptr;
    if (!PyUnicode_Check(argv[1])) return PyErr_Format(PyExc_TypeError, "submit_exec(): source must be a str");
    try {
        return post(self, PyTaskJob::Kind::Exec, CallableSpec{}, convert(self, argv[1], "source"), {}, false, argv[0]);
    } catch (const std::exception& e) {
        return raise_submit_error(e);
    }
}

// shutdown(wait: bool, cancel_futures: bool)
PyObject* pool_shutdown(PyObject* op, PyObject* const* argv, Py_ssize_t argc) {
    auto* self = as_pool(op);
    if (argc != 2) return PyErr_Format(PyExc_TypeError, "shutdown() takes 2 arguments (%zd given)", argc);
    if (!check_open(self)) return nullptr;
    int wait = PyObject_IsTrue(argv[0]), cancel = PyObject_IsTrue(argv[1]);
    if (wait < 0 || cancel < 0) return nullptr;
    try {
        if (wait && cancel) {  // as Pool::shutdown(true, true): each worker takes its first task first
            Pool* pool = self->pool;
            if (!without_gil([pool] {
                    try {
                        pool->wait_ready();
                    } catch (const BrokenPoolError&) {
                    }
                })) {
                return nullptr;
            }
        }
        // Cancelling settles futures, which needs this thread's main-interpreter GIL: do it holding it.
        self->pool->shutdown(/*wait=*/false, cancel != 0);
        if (wait) {
            Pool* pool = self->pool;
            // Waits in slices, handling signals in between: Ctrl-C stops the wait (KeyboardInterrupt),
            // as it stops ThreadPoolExecutor.shutdown(); the workers go on ending in the background.
            bool finished = false;
            while (!finished) {
                if (!without_gil([&] { finished = pool->wait_finished(std::chrono::milliseconds(50)); })) return nullptr;
                if (!finished && PyErr_CheckSignals() < 0) return nullptr;
            }
            if (!without_gil([pool] { pool->shutdown(/*wait=*/true, false); })) return nullptr;  // joins the threads
        }
    } catch (const std::exception& e) {
        PyErr_SetString(PyExc_RuntimeError, e.what());
        return nullptr;
    }
    Py_RETURN_NONE;
}

// wait_ready(): blocks until every worker has started; raises BrokenPool if one could not.
PyObject* pool_wait_ready(PyObject* op, PyObject*) {
    auto* self = as_pool(op);
    if (!check_open(self)) return nullptr;
    Pool* pool = self->pool;
    std::exception_ptr error;
    Py_BEGIN_ALLOW_THREADS
    try {
        pool->wait_ready();
    } catch (...) {
        error = std::current_exception();
    }
    Py_END_ALLOW_THREADS
    if (!error) Py_RETURN_NONE;
    try {
        std::rethrow_exception(error);
    } catch (const std::exception& e) {
        return raise_error(e);
    }
}

// broken() -> None, or why the pool is broken
PyObject* pool_broken(PyObject* op, PyObject*) {
    auto* self = as_pool(op);
    if (!check_open(self)) return nullptr;
    std::optional<std::string> why = self->pool->broken();
    if (!why) Py_RETURN_NONE;
    return PyUnicode_FromStringAndSize(why->data(), static_cast<Py_ssize_t>(why->size()));
}

// A list of one dict per worker, for stats().
detail::PyRef worker_dicts(const std::vector<WorkerStats>& stats) {
    detail::PyRef workers(PyList_New(0));
    if (!workers) return {};
    for (const WorkerStats& w : stats) {
        detail::PyRef current;
        if (w.current) {
            const RunningTask& t = *w.current;
            PyObject* pending = t.interrupt_pending_seconds ? PyFloat_FromDouble(*t.interrupt_pending_seconds)
                                                            : Py_NewRef(Py_None);
            current = detail::PyRef(Py_BuildValue("{s:s#,s:d,s:O,s:N}", "task", t.what.data(),
                                                  static_cast<Py_ssize_t>(t.what.size()), "running_s",
                                                  t.running_seconds, "interruptible", t.interruptible ? Py_True : Py_False,
                                                  "interrupt_pending_s", pending));
        } else {
            current = detail::PyRef::borrow(Py_None);
        }
        detail::PyRef entry(current ? Py_BuildValue("{s:n,s:L,s:K,s:K,s:d,s:O}", "worker", static_cast<Py_ssize_t>(w.index),
                                                    "interpreter_id", static_cast<long long>(w.interpreter_id),
                                                    "tasks_done", static_cast<unsigned long long>(w.tasks_done),
                                                    "tasks_failed", static_cast<unsigned long long>(w.tasks_failed),
                                                    "busy_s", w.busy_seconds, "current", current.get())
                                    : nullptr);
        if (!entry) return {};
        if (PyList_Append(workers.get(), entry.get()) < 0) return {};
    }
    return workers;
}

// stats() -> {"workers": [...], "queued": n, "replaced": n, "stuck": [...], "recycled": n}
PyObject* pool_stats(PyObject* op, PyObject*) {
    auto* self = as_pool(op);
    if (!check_open(self)) return nullptr;
    PoolStats stats;
    try {
        stats = self->pool->stats();
    } catch (const std::exception& e) {
        PyErr_SetString(PyExc_RuntimeError, e.what());
        return nullptr;
    }
    detail::PyRef workers = worker_dicts(stats.workers);
    detail::PyRef stuck = workers ? worker_dicts(stats.stuck) : detail::PyRef();
    if (!stuck) return nullptr;
    return Py_BuildValue("{s:O,s:n,s:n,s:O,s:n}", "workers", workers.get(), "queued",
                         static_cast<Py_ssize_t>(stats.queued), "replaced", static_cast<Py_ssize_t>(stats.replaced),
                         "stuck", stuck.get(), "recycled", static_cast<Py_ssize_t>(stats.recycled));
}

// dump_stacks(timeout: float) -> [str | None]
PyObject* pool_dump_stacks(PyObject* op, PyObject* arg) {
    auto* self = as_pool(op);
    if (!check_open(self)) return nullptr;
    double timeout = PyFloat_AsDouble(arg);
    if (timeout == -1.0 && PyErr_Occurred()) return nullptr;
    Pool* pool = self->pool;
    std::vector<std::optional<std::string>> stacks;
    // The monitors take the workers' GILs, and a worker may want ours.
    if (!without_gil([&] {
            stacks = pool->dump_stacks(std::chrono::milliseconds(static_cast<long long>(std::max(0.0, timeout) * 1000)));
        })) {
        return nullptr;
    }
    detail::PyRef out(PyList_New(static_cast<Py_ssize_t>(stacks.size())));
    if (!out) return nullptr;
    for (std::size_t i = 0; i < stacks.size(); ++i) {
        PyObject* item = stacks[i] ? PyUnicode_DecodeUTF8(stacks[i]->data(), static_cast<Py_ssize_t>(stacks[i]->size()),
                                                          "replace")
                                   : Py_NewRef(Py_None);
        if (!item) return nullptr;
        PyList_SET_ITEM(out.get(), static_cast<Py_ssize_t>(i), item);
    }
    return out.release();
}

// wait_finished(timeout: float) -> bool: every worker has ended its interpreter
PyObject* pool_wait_finished(PyObject* op, PyObject* arg) {
    auto* self = as_pool(op);
    if (!self->pool) Py_RETURN_TRUE;
    double timeout = PyFloat_AsDouble(arg);
    if (timeout == -1.0 && PyErr_Occurred()) return nullptr;
    Pool* pool = self->pool;
    bool done = false;
    Py_BEGIN_ALLOW_THREADS  // workers take the main GIL to settle futures
    done = pool->wait_finished(std::chrono::milliseconds(static_cast<long long>(std::max(0.0, timeout) * 1000)));
    Py_END_ALLOW_THREADS
    return PyBool_FromLong(done);
}

// interrupt_running(reason: str, later_calls_too: bool) -> int
PyObject* pool_interrupt_running(PyObject* op, PyObject* const* argv, Py_ssize_t argc) {
    auto* self = as_pool(op);
    if (argc != 2) return PyErr_Format(PyExc_TypeError, "interrupt_running() takes 2 arguments (%zd given)", argc);
    if (!check_open(self)) return nullptr;
    const char* reason = PyUnicode_AsUTF8(argv[0]);
    int later = PyObject_IsTrue(argv[1]);
    if (!reason || later < 0) return nullptr;
    return PyLong_FromSize_t(self->pool->interrupt_running(reason, later != 0));
}

PyObject* pool_is_shut_down(PyObject* op, PyObject*) {
    auto* self = as_pool(op);
    return PyBool_FromLong(!self->pool || self->pool->finished());
}

PyObject* pool_interpreter_ids(PyObject* op, PyObject*) {
    auto* self = as_pool(op);
    if (!check_open(self)) return nullptr;
    auto ids = self->pool->interpreter_ids();
    PyObject* list = PyList_New(static_cast<Py_ssize_t>(ids.size()));
    if (!list) return nullptr;
    for (std::size_t i = 0; i < ids.size(); ++i) {
        PyObject* id = PyLong_FromLongLong(ids[i]);
        if (!id) {
            Py_DECREF(list);
            return nullptr;
        }
        PyList_SET_ITEM(list, static_cast<Py_ssize_t>(i), id);
    }
    return list;
}

PyObject* pool_get_workers(PyObject* op, void*) {
    auto* self = as_pool(op);
    return PyLong_FromSize_t(self->pool ? self->pool->size() : 0);
}

PyMethodDef pool_methods[] = {
    {"submit", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(pool_submit)), METH_FASTCALL,
     "submit(future, spec, args, kwargs[, timeout[, counted]]) -> TaskHandle"},
    {"submit_chunk", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(pool_submit_chunk)), METH_FASTCALL,
     "submit_chunk(future, spec, items, star) -> TaskHandle; the future gets (results, exception or None)"},
    {"submit_exec", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(pool_submit_exec)), METH_FASTCALL,
     "submit_exec(future, source) -> TaskHandle"},
    {"shutdown", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(pool_shutdown)), METH_FASTCALL,
     "shutdown(wait, cancel_futures)"},
    {"wait_ready", pool_wait_ready, METH_NOARGS, "wait_ready(): block until every worker has started"},
    {"broken", pool_broken, METH_NOARGS, "broken() -> None, or why the pool is broken"},
    {"interpreter_ids", pool_interpreter_ids, METH_NOARGS, "interpreter_ids() -> list[int]"},
    {"is_shut_down", pool_is_shut_down, METH_NOARGS, "True once every worker has ended its interpreter"},
    {"stats", pool_stats, METH_NOARGS, "stats() -> {'workers': [...], 'queued': n, 'replaced': n, 'stuck': [...]}"},
    {"dump_stacks", pool_dump_stacks, METH_O, "dump_stacks(timeout) -> [str | None], one per worker"},
    {"wait_finished", pool_wait_finished, METH_O, "wait_finished(timeout) -> bool: every worker has ended"},
    {"interrupt_running", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(pool_interrupt_running)),
     METH_FASTCALL, "interrupt_running(reason, later_calls_too) -> number of running calls interrupted"},
    {nullptr, nullptr, 0, nullptr},
};

PyGetSetDef pool_getset[] = {
    {"workers", pool_get_workers, nullptr, "number of worker interpreters", nullptr},
    {nullptr, nullptr, nullptr, nullptr, nullptr},
};

PyType_Slot pool_slots[] = {
    {Py_tp_init, reinterpret_cast<void*>(pool_init)},
    {Py_tp_dealloc, reinterpret_cast<void*>(pool_dealloc)},
    {Py_tp_traverse, reinterpret_cast<void*>(pool_traverse)},
    {Py_tp_methods, pool_methods},
    {Py_tp_getset, pool_getset},
    {Py_tp_doc, const_cast<char*>("The native half of manygil.Pool: workers, queue, task transfer.")},
    {0, nullptr},
};

}  // namespace

// The callable as _shipping.callable_spec() gives it: a "module:qualname" str, a pickle (bytes), or
// (shared object, method name) for a bound method of an object that travels by reference.
bool parse_spec(PyObject* spec, CallableSpec& out) {
    Py_ssize_t n = 0;
    if (PyUnicode_Check(spec)) {
        const char* s = PyUnicode_AsUTF8AndSize(spec, &n);
        if (!s) return false;
        out = {CallableSpec::Kind::Reference, std::string(s, static_cast<std::size_t>(n)), {}};
        return true;
    }
    if (PyBytes_Check(spec)) {
        out = {CallableSpec::Kind::Pickled,
               std::string(PyBytes_AS_STRING(spec), static_cast<std::size_t>(PyBytes_GET_SIZE(spec))), {}};
        return true;
    }
    if (PyTuple_Check(spec) && PyTuple_GET_SIZE(spec) == 2 && PyUnicode_Check(PyTuple_GET_ITEM(spec, 1))) {
        const char* name = PyUnicode_AsUTF8AndSize(PyTuple_GET_ITEM(spec, 1), &n);
        if (!name) return false;
        try {  // no pickle fallback: only objects that travel by reference qualify
            out = {CallableSpec::Kind::Method, std::string(name, static_cast<std::size_t>(n)),
                   detail::encode_python(PyTuple_GET_ITEM(spec, 0))};
        } catch (const ConversionError& e) {
            PyErr_Format(PyExc_TypeError, "cannot send the method %U: its object does not travel by reference (%s)",
                         PyTuple_GET_ITEM(spec, 1), e.what());
            return false;
        }
        return true;
    }
    PyErr_SetString(PyExc_TypeError,
                    "callable spec must be str (reference), bytes (pickled) or (shared object, method name)");
    return false;
}

PyType_Spec pool_spec = {
    "manygil._core.Pool", sizeof(PoolObject), 0,
    Py_TPFLAGS_DEFAULT | Py_TPFLAGS_IMMUTABLETYPE | Py_TPFLAGS_HAVE_GC, pool_slots,
};

std::size_t dropped_pools() {
    if (forked_child()) return 0;
    std::lock_guard lock(g_graveyard_mu);
    // Reap the finished ones first (their workers have ended: joining them does not block).
    std::erase_if(g_graveyard, [](const std::unique_ptr<Pool>& p) { return p->finished(); });
    return g_graveyard.size();
}

void finalize_pools() {
    if (forked_child()) return;  // the workers live in the parent
    std::vector<std::unique_ptr<Pool>> dead;
    {
        std::lock_guard lock(g_graveyard_mu);
        dead.swap(g_graveyard);
    }
    runtime_for_exit().close();  // shuts down and joins every pool, live or dead
    dead.clear();                // already joined: destroying them touches no Python
}

Pool* pool_of(PyObject* op, PyTypeObject* pool_type) {
    if (!PyObject_TypeCheck(op, pool_type) || !as_pool(op)->pool) {
        PyErr_Format(PyExc_TypeError, "expected a live _core.Pool, not %.100s", Py_TYPE(op)->tp_name);
        return nullptr;
    }
    return as_pool(op)->pool;
}

}  // namespace manygil::ext
