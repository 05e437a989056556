#include "pytypes/sync_types.hpp"

#include <new>
#include <string>

#include "cpython/interpreter_dict.hpp"
#include "pytypes/interrupted_wait.hpp"
#include "pytypes/timeout_arg.hpp"

namespace manygil::detail {

namespace {

template <class T>
struct SyncObject {
    PyObject_HEAD
    T value;  // placement-constructed, destroyed in dealloc
};

template <class T>
T& get(PyObject* op) {
    return reinterpret_cast<SyncObject<T>*>(op)->value;
}

template <class T>
PyObject* wrap_in(PyTypeObject* type, T value) {
    PyObject* self = type->tp_alloc(type, 0);
    if (self) new (&get<T>(self)) T(std::move(value));
    return self;
}

template <class T>
void sync_dealloc(PyObject* op) {
    PyTypeObject* type = Py_TYPE(op);
    get<T>(op).~T();
    type->tp_free(op);
    Py_DECREF(type);
}

template <class T>
PyObject* sync_richcompare(PyObject* a, PyObject* b, int op) {
    if (Py_TYPE(a) != Py_TYPE(b) || (op != Py_EQ && op != Py_NE)) Py_RETURN_NOTIMPLEMENTED;
    bool same = get<T>(a) == get<T>(b);
    return PyBool_FromLong(op == Py_EQ ? same : !same);
}

PyObject* sync_reduce(PyObject* self, PyObject*) {
    PyErr_Format(PyExc_TypeError, "a %s cannot be pickled: it travels by reference to manygil workers and channels",
                 Py_TYPE(self)->tp_name);
    return nullptr;
}

// Runs fn() (which blocks) with the GIL released. fn must not throw.
template <class Fn>
auto blocking(Fn fn) {
    decltype(fn()) result;
    Py_BEGIN_ALLOW_THREADS result = fn();
    Py_END_ALLOW_THREADS return result;
}

// acquire(blocking=True, timeout=...) for Lock and Semaphore.
template <class T>
PyObject* acquire(PyObject* self, PyObject* args, PyObject* kwargs, bool lock_style) {
    int block = 1;
    PyObject* timeout_arg = nullptr;
    static const char* kw[] = {"blocking", "timeout", nullptr};
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|pO:acquire", const_cast<char**>(kw), &block, &timeout_arg)) {
        return nullptr;
    }
    Timeout timeout;
    if (!parse_timeout(timeout_arg, timeout, lock_style ? TimeoutRule::LockStyle : TimeoutRule::NonNegative)) {
        return nullptr;
    }
    if (!block) {
        if (timeout) {
            PyErr_SetString(PyExc_ValueError, "can't specify a timeout for a non-blocking call");
            return nullptr;
        }
        timeout = std::chrono::duration<double>(0);
    }
    T primitive = get<T>(self);  // kept alive while the GIL is released
    bool acquired = blocking([&] { return primitive.acquire(timeout); });
    if (!acquired && raise_if_wait_interrupted()) return nullptr;
    return PyBool_FromLong(acquired);
}

PyObject* enter_lock_like(PyObject* self, PyObject* (*acquire_fn)(PyObject*, PyObject*, PyObject*)) {
    PyRef args(PyTuple_New(0));
    PyRef ok(args ? acquire_fn(self, args.get(), nullptr) : nullptr);
    return ok ? Py_NewRef(self) : nullptr;
}

// --- Lock ---------------------------------------------------------------------------------------------

PyObject* lock_new(PyTypeObject* type, PyObject* args, PyObject* kwargs) {
    if (!PyArg_ParseTuple(args, ":Lock") || (kwargs && PyDict_GET_SIZE(kwargs))) {
        if (!PyErr_Occurred()) PyErr_SetString(PyExc_TypeError, "Lock() takes no arguments");
        return nullptr;
    }
    return wrap_in(type, Lock());
}
PyObject* lock_acquire(PyObject* self, PyObject* args, PyObject* kwargs) { return acquire<Lock>(self, args, kwargs, true); }
PyObject* lock_release(PyObject* self, PyObject*) {
    try {
        get<Lock>(self).release();
    } catch (const Error& e) {
        PyErr_SetString(PyExc_RuntimeError, e.what());
        return nullptr;
    }
    Py_RETURN_NONE;
}
PyObject* lock_locked(PyObject* self, PyObject*) { return PyBool_FromLong(get<Lock>(self).locked()); }
PyObject* lock_enter(PyObject* self, PyObject*) { return enter_lock_like(self, lock_acquire); }
PyObject* lock_exit(PyObject* self, PyObject*) { return lock_release(self, nullptr); }

PyMethodDef lock_methods[] = {
    {"acquire", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(lock_acquire)), METH_VARARGS | METH_KEYWORDS,
     "acquire(blocking=True, timeout=-1) -> bool"},
    {"release", lock_release, METH_NOARGS, "release(); RuntimeError if not locked. Any interpreter may release."},
    {"locked", lock_locked, METH_NOARGS, "locked() -> bool"},
    {"__enter__", lock_enter, METH_NOARGS, nullptr},
    {"__exit__", lock_exit, METH_VARARGS, nullptr},
    {"__reduce__", sync_reduce, METH_NOARGS, nullptr},
    {nullptr, nullptr, 0, nullptr},
};

// --- Event --------------------------------------------------------------------------------------------

PyObject* event_new(PyTypeObject* type, PyObject* args, PyObject*) {
    if (!PyArg_ParseTuple(args, ":Event")) return nullptr;
    return wrap_in(type, Event());
}
PyObject* event_set(PyObject* self, PyObject*) {
    get<Event>(self).set();
    Py_RETURN_NONE;
}
PyObject* event_clear(PyObject* self, PyObject*) {
    get<Event>(self).clear();
    Py_RETURN_NONE;
}
PyObject* event_is_set(PyObject* self, PyObject*) { return PyBool_FromLong(get<Event>(self).is_set()); }
PyObject* event_wait(PyObject* self, PyObject* args, PyObject* kwargs) {
    PyObject* timeout_arg = nullptr;
    static const char* kw[] = {"timeout", nullptr};
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|O:wait", const_cast<char**>(kw), &timeout_arg)) return nullptr;
    Timeout timeout;
    if (!parse_timeout(timeout_arg, timeout)) return nullptr;
    Event event = get<Event>(self);
    bool set = blocking([&] { return event.wait(timeout); });
    if (!set && raise_if_wait_interrupted()) return nullptr;
    return PyBool_FromLong(set);
}

PyMethodDef event_methods[] = {
    {"set", event_set, METH_NOARGS, "set(): wake every waiter, in every interpreter"},
    {"clear", event_clear, METH_NOARGS, "clear()"},
    {"is_set", event_is_set, METH_NOARGS, "is_set() -> bool"},
    {"wait", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(event_wait)), METH_VARARGS | METH_KEYWORDS,
     "wait(timeout=None) -> bool: the flag on return"},
    {"__reduce__", sync_reduce, METH_NOARGS, nullptr},
    {nullptr, nullptr, 0, nullptr},
};

// --- Semaphore ----------------------------------------------------------------------------------------

PyObject* semaphore_new(PyTypeObject* type, PyObject* args, PyObject* kwargs) {
    Py_ssize_t value = 1;
    static const char* kw[] = {"value", nullptr};
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|n:Semaphore", const_cast<char**>(kw), &value)) return nullptr;
    if (value < 0) return PyErr_Format(PyExc_ValueError, "semaphore initial value must be >= 0");
    return wrap_in(type, Semaphore(static_cast<std::size_t>(value)));
}
PyObject* semaphore_acquire(PyObject* self, PyObject* args, PyObject* kwargs) {
    return acquire<Semaphore>(self, args, kwargs, false);
}
PyObject* semaphore_release(PyObject* self, PyObject* args, PyObject* kwargs) {
    Py_ssize_t n = 1;
    static const char* kw[] = {"n", nullptr};
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|n:release", const_cast<char**>(kw), &n)) return nullptr;
    if (n < 1) return PyErr_Format(PyExc_ValueError, "n must be one or more");
    get<Semaphore>(self).release(static_cast<std::size_t>(n));
    Py_RETURN_NONE;
}
PyObject* semaphore_enter(PyObject* self, PyObject*) { return enter_lock_like(self, semaphore_acquire); }
PyObject* semaphore_exit(PyObject* self, PyObject*) {
    get<Semaphore>(self).release(1);
    Py_RETURN_NONE;
}

PyMethodDef semaphore_methods[] = {
    {"acquire", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(semaphore_acquire)),
     METH_VARARGS | METH_KEYWORDS, "acquire(blocking=True, timeout=None) -> bool"},
    {"release", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(semaphore_release)),
     METH_VARARGS | METH_KEYWORDS, "release(n=1)"},
    {"__enter__", semaphore_enter, METH_NOARGS, nullptr},
    {"__exit__", semaphore_exit, METH_VARARGS, nullptr},
    {"__reduce__", sync_reduce, METH_NOARGS, nullptr},
    {nullptr, nullptr, 0, nullptr},
};

// --- Barrier ------------------------------------------------------------------------------------------

PyObject* raise_broken_barrier() {
    PyRef threading(PyImport_ImportModule("threading"));
    PyRef cls(threading ? PyObject_GetAttrString(threading.get(), "BrokenBarrierError") : nullptr);
    if (cls) PyErr_SetNone(cls.get());
    return nullptr;
}

PyObject* barrier_new(PyTypeObject* type, PyObject* args, PyObject* kwargs) {
    Py_ssize_t parties;
    static const char* kw[] = {"parties", nullptr};
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "n:Barrier", const_cast<char**>(kw), &parties)) return nullptr;
    if (parties < 1) return PyErr_Format(PyExc_ValueError, "parties must be >= 1");
    return wrap_in(type, Barrier(static_cast<std::size_t>(parties)));
}
PyObject* barrier_wait(PyObject* self, PyObject* args, PyObject* kwargs) {
    PyObject* timeout_arg = nullptr;
    static const char* kw[] = {"timeout", nullptr};
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|O:wait", const_cast<char**>(kw), &timeout_arg)) return nullptr;
    Timeout timeout;
    if (!parse_timeout(timeout_arg, timeout)) return nullptr;
    Barrier barrier = get<Barrier>(self);
    long long index = blocking([&]() -> long long {
        try {
            return static_cast<long long>(barrier.wait(timeout));
        } catch (const BrokenBarrier&) {
            return -1;
        }
    });
    if (index >= 0) return PyLong_FromLongLong(index);
    // An interrupt broke the barrier as a timeout would (as any exception in threading.Barrier.wait
    // does): the others get BrokenBarrierError, this call the interrupt.
    return raise_if_wait_interrupted() ? nullptr : raise_broken_barrier();
}
PyObject* barrier_abort(PyObject* self, PyObject*) {
    get<Barrier>(self).abort();
    Py_RETURN_NONE;
}
PyObject* barrier_reset(PyObject* self, PyObject*) {
    get<Barrier>(self).reset();
    Py_RETURN_NONE;
}
PyObject* barrier_parties(PyObject* self, void*) { return PyLong_FromSize_t(get<Barrier>(self).parties()); }
PyObject* barrier_n_waiting(PyObject* self, void*) { return PyLong_FromSize_t(get<Barrier>(self).n_waiting()); }
PyObject* barrier_broken(PyObject* self, void*) { return PyBool_FromLong(get<Barrier>(self).broken()); }

PyMethodDef barrier_methods[] = {
    {"wait", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(barrier_wait)), METH_VARARGS | METH_KEYWORDS,
     "wait(timeout=None) -> arrival index; threading.BrokenBarrierError if broken (a timeout breaks it)"},
    {"abort", barrier_abort, METH_NOARGS, "abort(): break the barrier"},
    {"reset", barrier_reset, METH_NOARGS, "reset(): waiters get BrokenBarrierError; the barrier is whole again"},
    {"__reduce__", sync_reduce, METH_NOARGS, nullptr},
    {nullptr, nullptr, 0, nullptr},
};

PyGetSetDef barrier_getset[] = {
    {"parties", barrier_parties, nullptr, nullptr, nullptr},
    {"n_waiting", barrier_n_waiting, nullptr, nullptr, nullptr},
    {"broken", barrier_broken, nullptr, nullptr, nullptr},
    {nullptr, nullptr, nullptr, nullptr, nullptr},
};

// --- the types ----------------------------------------------------------------------------------------

template <class T>
PyType_Spec make_spec(const char* name, newfunc tp_new, PyMethodDef* methods, PyGetSetDef* getset, const char* doc) {
    static PyType_Slot slots[] = {
        {Py_tp_new, reinterpret_cast<void*>(tp_new)},
        {Py_tp_dealloc, reinterpret_cast<void*>(sync_dealloc<T>)},
        {Py_tp_methods, methods},
        {Py_tp_richcompare, reinterpret_cast<void*>(sync_richcompare<T>)},
        {Py_tp_hash, reinterpret_cast<void*>(PyObject_HashNotImplemented)},
        {Py_tp_doc, const_cast<char*>(doc)},
        {getset ? Py_tp_getset : 0, getset},
        {0, nullptr},
    };
    return {name, sizeof(SyncObject<T>), 0, Py_TPFLAGS_DEFAULT | Py_TPFLAGS_IMMUTABLETYPE, slots};
}

PyType_Spec lock_spec = make_spec<Lock>(
    "manygil.Lock", lock_new, lock_methods, nullptr,
    "Lock(): a lock shared by every interpreter it is passed to, with threading.Lock's API.");
PyType_Spec event_spec = make_spec<Event>(
    "manygil.Event", event_new, event_methods, nullptr,
    "Event(): an event shared by every interpreter it is passed to, with threading.Event's API.");
PyType_Spec semaphore_spec = make_spec<Semaphore>(
    "manygil.Semaphore", semaphore_new, semaphore_methods, nullptr,
    "Semaphore(value=1): a semaphore shared across interpreters, with threading.Semaphore's API.");
PyType_Spec barrier_spec = make_spec<Barrier>(
    "manygil.Barrier", barrier_new, barrier_methods, barrier_getset,
    "Barrier(parties): a barrier shared across interpreters, with threading.Barrier's API (no action).");

}  // namespace

PyTypeObject* sync_type(const char* name) {
    std::string key = std::string("manygil.") + name;
    PyType_Spec* spec = std::string(name) == "Lock"        ? &lock_spec
                        : std::string(name) == "Event"     ? &event_spec
                        : std::string(name) == "Semaphore" ? &semaphore_spec
                                                           : &barrier_spec;
    return reinterpret_cast<PyTypeObject*>(per_interpreter(key.c_str(), [spec] { return PyType_FromSpec(spec); }));
}

PyRef wrap_sync(const SyncPrimitive& primitive) {
    static const char* const kNames[] = {"Lock", "Event", "Semaphore", "Barrier"};
    PyTypeObject* type = sync_type(kNames[primitive.index()]);
    PyRef self(std::visit([type](const auto& p) { return wrap_in(type, p); }, primitive));
    if (!self) throw_python_error();
    return self;
}

std::optional<SyncPrimitive> unwrap_sync(PyObject* obj) {
    PyTypeObject* type = Py_TYPE(obj);
    if (type == sync_type("Lock")) return get<Lock>(obj);
    if (type == sync_type("Event")) return get<Event>(obj);
    if (type == sync_type("Semaphore")) return get<Semaphore>(obj);
    if (type == sync_type("Barrier")) return get<Barrier>(obj);
    return std::nullopt;
}

}  // namespace manygil::detail
