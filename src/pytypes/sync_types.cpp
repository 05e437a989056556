#include "pytypes/sync_types.hpp"

#include <string_view>
#include <tuple>

#include "pytypes/blocking_call.hpp"
#include "pytypes/handle_type.hpp"

namespace manygil::detail {

namespace {

template <class T>
T& get(PyObject* op) {
    return HandleType<T>::of(op);
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
    return HandleType<Lock>::make(type, Lock());
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

constexpr char kLockNotPicklable[] =
    "a manygil.Lock cannot be pickled: it travels by reference to manygil workers and channels";

PyMethodDef lock_methods[] = {
    {"acquire", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(lock_acquire)), METH_VARARGS | METH_KEYWORDS,
     "acquire(blocking=True, timeout=-1) -> bool"},
    {"release", lock_release, METH_NOARGS, "release(); RuntimeError if not locked. Any interpreter may release."},
    {"locked", lock_locked, METH_NOARGS, "locked() -> bool"},
    {"__enter__", lock_enter, METH_NOARGS, nullptr},
    {"__exit__", lock_exit, METH_VARARGS, nullptr},
    {"__reduce__", refuse_pickle<kLockNotPicklable>, METH_NOARGS, nullptr},
    {nullptr, nullptr, 0, nullptr},
};

// --- Event --------------------------------------------------------------------------------------------

PyObject* event_new(PyTypeObject* type, PyObject* args, PyObject*) {
    if (!PyArg_ParseTuple(args, ":Event")) return nullptr;
    return HandleType<Event>::make(type, Event());
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

constexpr char kEventNotPicklable[] =
    "a manygil.Event cannot be pickled: it travels by reference to manygil workers and channels";

PyMethodDef event_methods[] = {
    {"set", event_set, METH_NOARGS, "set(): wake every waiter, in every interpreter"},
    {"clear", event_clear, METH_NOARGS, "clear()"},
    {"is_set", event_is_set, METH_NOARGS, "is_set() -> bool"},
    {"wait", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(event_wait)), METH_VARARGS | METH_KEYWORDS,
     "wait(timeout=None) -> bool: the flag on return"},
    {"__reduce__", refuse_pickle<kEventNotPicklable>, METH_NOARGS, nullptr},
    {nullptr, nullptr, 0, nullptr},
};

// --- Semaphore ----------------------------------------------------------------------------------------

PyObject* semaphore_new(PyTypeObject* type, PyObject* args, PyObject* kwargs) {
    Py_ssize_t value = 1;
    static const char* kw[] = {"value", nullptr};
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|n:Semaphore", const_cast<char**>(kw), &value)) return nullptr;
    if (value < 0) return PyErr_Format(PyExc_ValueError, "semaphore initial value must be >= 0");
    return HandleType<Semaphore>::make(type, Semaphore(static_cast<std::size_t>(value)));
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

constexpr char kSemaphoreNotPicklable[] =
    "a manygil.Semaphore cannot be pickled: it travels by reference to manygil workers and channels";

PyMethodDef semaphore_methods[] = {
    {"acquire", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(semaphore_acquire)),
     METH_VARARGS | METH_KEYWORDS, "acquire(blocking=True, timeout=None) -> bool"},
    {"release", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(semaphore_release)),
     METH_VARARGS | METH_KEYWORDS, "release(n=1)"},
    {"__enter__", semaphore_enter, METH_NOARGS, nullptr},
    {"__exit__", semaphore_exit, METH_VARARGS, nullptr},
    {"__reduce__", refuse_pickle<kSemaphoreNotPicklable>, METH_NOARGS, nullptr},
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
    return HandleType<Barrier>::make(type, Barrier(static_cast<std::size_t>(parties)));
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

constexpr char kBarrierNotPicklable[] =
    "a manygil.Barrier cannot be pickled: it travels by reference to manygil workers and channels";

PyMethodDef barrier_methods[] = {
    {"wait", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(barrier_wait)), METH_VARARGS | METH_KEYWORDS,
     "wait(timeout=None) -> arrival index; threading.BrokenBarrierError if broken (a timeout breaks it)"},
    {"abort", barrier_abort, METH_NOARGS, "abort(): break the barrier"},
    {"reset", barrier_reset, METH_NOARGS, "reset(): waiters get BrokenBarrierError; the barrier is whole again"},
    {"__reduce__", refuse_pickle<kBarrierNotPicklable>, METH_NOARGS, nullptr},
    {nullptr, nullptr, 0, nullptr},
};

PyGetSetDef barrier_getset[] = {
    {"parties", barrier_parties, nullptr, nullptr, nullptr},
    {"n_waiting", barrier_n_waiting, nullptr, nullptr, nullptr},
    {"broken", barrier_broken, nullptr, nullptr, nullptr},
    {nullptr, nullptr, nullptr, nullptr, nullptr},
};

// --- the types ----------------------------------------------------------------------------------------

// The slots of the primitive T's type (static: the types of every interpreter use them).
template <class T>
PyType_Slot* sync_slots(newfunc tp_new, PyMethodDef* methods, PyGetSetDef* getset, const char* doc) {
    static PyType_Slot slots[] = {
        {Py_tp_new, reinterpret_cast<void*>(tp_new)},
        {Py_tp_methods, methods},
        {Py_tp_richcompare, reinterpret_cast<void*>(HandleType<T>::richcompare)},
        {Py_tp_hash, reinterpret_cast<void*>(PyObject_HashNotImplemented)},
        {Py_tp_doc, const_cast<char*>(doc)},
        {getset ? Py_tp_getset : 0, getset},
        {0, nullptr},
    };
    return slots;
}

const std::tuple<HandleType<Lock>, HandleType<Event>, HandleType<Semaphore>, HandleType<Barrier>> kSyncTypes{
    {"manygil.Lock",
     sync_slots<Lock>(lock_new, lock_methods, nullptr,
                      "Lock(): a lock shared by every interpreter it is passed to, with threading.Lock's API.")},
    {"manygil.Event",
     sync_slots<Event>(event_new, event_methods, nullptr,
                       "Event(): an event shared by every interpreter it is passed to, with threading.Event's API.")},
    {"manygil.Semaphore",
     sync_slots<Semaphore>(
         semaphore_new, semaphore_methods, nullptr,
         "Semaphore(value=1): a semaphore shared across interpreters, with threading.Semaphore's API.")},
    {"manygil.Barrier",
     sync_slots<Barrier>(
         barrier_new, barrier_methods, barrier_getset,
         "Barrier(parties): a barrier shared across interpreters, with threading.Barrier's API (no action).")},
};

template <class T>
const HandleType<T>& type_of() {
    return std::get<HandleType<T>>(kSyncTypes);
}

}  // namespace

PyTypeObject* sync_type(const char* name) {
    std::string_view n = name;
    return n == "Lock"        ? type_of<Lock>().type()
           : n == "Event"     ? type_of<Event>().type()
           : n == "Semaphore" ? type_of<Semaphore>().type()
                              : type_of<Barrier>().type();
}

PyRef wrap_sync(const SyncPrimitive& primitive) {
    return std::visit([](const auto& p) { return type_of<std::decay_t<decltype(p)>>().wrap(p); }, primitive);
}

std::optional<SyncPrimitive> unwrap_sync(PyObject* obj) {
    if (const Lock* lock = type_of<Lock>().unwrap(obj)) return *lock;
    if (const Event* event = type_of<Event>().unwrap(obj)) return *event;
    if (const Semaphore* semaphore = type_of<Semaphore>().unwrap(obj)) return *semaphore;
    if (const Barrier* barrier = type_of<Barrier>().unwrap(obj)) return *barrier;
    return std::nullopt;
}

}  // namespace manygil::detail
