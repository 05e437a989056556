#include "pytypes/channel_type.hpp"

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "manygil/value.hpp"
#include "codec/payload_python.hpp"
#include "cpython/interpreter_dict.hpp"
#include "cpython/python_error.hpp"
#include "pytypes/blocking_call.hpp"
#include "pytypes/handle_type.hpp"
#include "shared/channel_access.hpp"

namespace manygil::detail {

namespace {

using ChannelType = HandleType<Channel>;

Channel& channel_of(PyObject* op) { return ChannelType::of(op); }

// What sends objects of other types: the package's pickler when it lends one here (cloudpickle:
// lambdas, __main__ classes; package_hook), else the standard pickle.
PyObject* pickler() {
    if (PyObject* dumps = package_hook("worker.dumps")) return dumps;
    return per_interpreter("manygil.channel_pickler", [] {
        PyRef pickle(PyImport_ImportModule("pickle"));
        return pickle ? PyObject_GetAttrString(pickle.get(), "dumps") : nullptr;
    });
}

PyObject* raise_named(const char* name, const char* message) {
    try {
        PyErr_SetString(channel_exception(name), message);
    } catch (const std::exception& e) {
        PyErr_SetString(PyExc_RuntimeError, e.what());
    }
    return nullptr;
}


PyObject* do_send(PyObject* self, PyObject* obj, Channel::Timeout timeout) {
    Payload payload;
    try {
        payload = encode_python(obj, pickler());
    } catch (const ConversionError& e) {
        return raise_not_shareable(e);
    } catch (const PythonError& e) {
        PyErr_SetString(PyExc_RuntimeError, e.what());
        return nullptr;
    }
    Channel channel = channel_of(self);  // kept alive while the GIL is released
    bool sent = false, closed = false;
    Py_BEGIN_ALLOW_THREADS
    try {
        sent = ChannelAccess::send(channel, std::move(payload), timeout);
    } catch (const ChannelClosed&) {
        closed = true;
    }
    Py_END_ALLOW_THREADS
    if (closed) return raise_named("ChannelClosed", "send() on a closed channel");
    if (!sent) return raise_if_wait_interrupted() ? nullptr : raise_named("ChannelFull", "the channel is full");
    Py_RETURN_NONE;
}

// Returns a new reference, or null with: ChannelEmpty (timeout) / ChannelClosed / a conversion error.
PyObject* do_recv(PyObject* self, Channel::Timeout timeout) {
    Channel channel = channel_of(self);
    std::optional<Payload> payload;
    bool closed = false;
    Py_BEGIN_ALLOW_THREADS
    try {
        payload = ChannelAccess::recv(channel, timeout);
    } catch (const ChannelClosed&) {
        closed = true;
    }
    Py_END_ALLOW_THREADS
    if (closed) return raise_named("ChannelClosed", "the channel is closed and empty");
    if (!payload) return raise_if_wait_interrupted() ? nullptr : raise_named("ChannelEmpty", "the channel is empty");
    try {
        return decode_python(*payload).release();
    } catch (const ConversionError& e) {
        return raise_not_shareable(e);
    } catch (const PythonError& e) {
        PyErr_SetString(PyExc_RuntimeError, e.what());
        return nullptr;
    }
}

PyObject* channel_new(PyTypeObject* type, PyObject* args, PyObject* kwargs) {
    Py_ssize_t maxsize = 0;
    static const char* kw[] = {"maxsize", nullptr};
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|n:Channel", const_cast<char**>(kw), &maxsize)) return nullptr;
    if (maxsize < 0) return PyErr_Format(PyExc_ValueError, "maxsize must be >= 0 (0: unbounded), not %zd", maxsize);
    return ChannelType::make(type, Channel(static_cast<std::size_t>(maxsize)));
}

PyObject* channel_send(PyObject* self, PyObject* args, PyObject* kwargs) {
    PyObject *obj, *timeout_arg = nullptr;
    static const char* kw[] = {"obj", "timeout", nullptr};
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O|O:send", const_cast<char**>(kw), &obj, &timeout_arg)) {
        return nullptr;
    }
    Channel::Timeout timeout;
    if (!parse_timeout(timeout_arg, timeout)) return nullptr;
    return do_send(self, obj, timeout);
}

PyObject* channel_send_nowait(PyObject* self, PyObject* obj) {
    return do_send(self, obj, std::chrono::duration<double>(0));
}

PyObject* channel_recv(PyObject* self, PyObject* args, PyObject* kwargs) {
    PyObject* timeout_arg = nullptr;
    static const char* kw[] = {"timeout", nullptr};
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|O:recv", const_cast<char**>(kw), &timeout_arg)) return nullptr;
    Channel::Timeout timeout;
    if (!parse_timeout(timeout_arg, timeout)) return nullptr;
    return do_recv(self, timeout);
}

PyObject* channel_recv_nowait(PyObject* self, PyObject*) { return do_recv(self, std::chrono::duration<double>(0)); }

// recv_async(timeout=None) and send_async(obj, timeout=None): the package's coroutines
// (manygil/_aio.py), which wait on this interpreter's running loop through a _ChannelWaker, called
// as hook(self, *args, **kwargs). Without the package (a C++ host) there are none.
PyObject* call_aio_hook(const char* hook_name, const char* method, PyObject* self, PyObject* args, PyObject* kwargs) {
    PyObject* hook = nullptr;
    try {
        hook = package_hook(hook_name);
    } catch (const std::exception&) {
        return nullptr;  // the provider raised: its error is set
    }
    if (!hook) {
        PyErr_Format(PyExc_RuntimeError, "Channel.%s needs the manygil package (import manygil)", method);
        return nullptr;
    }
    PyRef call_args(PyTuple_New(PyTuple_GET_SIZE(args) + 1));
    if (!call_args) return nullptr;
    PyTuple_SET_ITEM(call_args.get(), 0, Py_NewRef(self));
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(args); ++i) {
        PyTuple_SET_ITEM(call_args.get(), i + 1, Py_NewRef(PyTuple_GET_ITEM(args, i)));
    }
    return PyObject_Call(hook, call_args.get(), kwargs);
}

PyObject* channel_recv_async(PyObject* self, PyObject* args, PyObject* kwargs) {
    return call_aio_hook("aio.channel_recv", "recv_async", self, args, kwargs);
}

PyObject* channel_send_async(PyObject* self, PyObject* args, PyObject* kwargs) {
    return call_aio_hook("aio.channel_send", "send_async", self, args, kwargs);
}

PyObject* channel_close(PyObject* self, PyObject*) {
    channel_of(self).close();
    Py_RETURN_NONE;
}

PyObject* channel_iternext(PyObject* self) {
    PyObject* item = do_recv(self, std::nullopt);
    if (!item) {
        PyObject* closed = nullptr;
        try {
            closed = channel_exception("ChannelClosed");
        } catch (const std::exception&) {
        }
        if (closed && PyErr_ExceptionMatches(closed)) PyErr_Clear();  // closed and drained: StopIteration
    }
    return item;
}

Py_ssize_t channel_length(PyObject* self) { return static_cast<Py_ssize_t>(channel_of(self).size()); }

PyObject* channel_get_closed(PyObject* self, void*) { return PyBool_FromLong(channel_of(self).closed()); }
PyObject* channel_get_maxsize(PyObject* self, void*) { return PyLong_FromSize_t(channel_of(self).maxsize()); }

constexpr char kNotPicklable[] =
    "a Channel cannot be pickled: it travels by reference to manygil workers and through channels";

PyMethodDef channel_methods[] = {
    {"send", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(channel_send)), METH_VARARGS | METH_KEYWORDS,
     "send(obj, timeout=None): put obj, waiting while full; ChannelFull on timeout, ChannelClosed if closed"},
    {"send_nowait", channel_send_nowait, METH_O, "send_nowait(obj): send without waiting (ChannelFull)"},
    {"send_async", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(channel_send_async)),
     METH_VARARGS | METH_KEYWORDS,
     "send_async(obj, timeout=None): a coroutine: send for asyncio, waiting for room without a thread or a poll (the "
     "running loop watches an eventfd that a receive or a close fires); ChannelFull on timeout, ChannelClosed if "
     "closed (also while waiting); cancellable: a cancelled or timed-out send_async sends nothing. On an unbounded "
     "channel it is send_nowait"},
    {"recv", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(channel_recv)), METH_VARARGS | METH_KEYWORDS,
     "recv(timeout=None): take the next object, waiting while empty; ChannelEmpty on timeout, ChannelClosed "
     "once closed and drained"},
    {"recv_nowait", channel_recv_nowait, METH_NOARGS, "recv_nowait(): recv without waiting (ChannelEmpty)"},
    {"recv_async", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(channel_recv_async)),
     METH_VARARGS | METH_KEYWORDS,
     "recv_async(timeout=None): a coroutine: recv for asyncio, waiting without a thread or a poll (the running "
     "loop watches an eventfd); ChannelEmpty on timeout, ChannelClosed once closed and drained; cancellable"},
    {"close", channel_close, METH_NOARGS, "close(): senders get ChannelClosed; receivers drain what is left"},
    {"__reduce__", refuse_pickle<kNotPicklable>, METH_NOARGS, nullptr},
    {nullptr, nullptr, 0, nullptr},
};

PyGetSetDef channel_getset[] = {
    {"closed", channel_get_closed, nullptr, "True once close() was called", nullptr},
    {"maxsize", channel_get_maxsize, nullptr, "capacity (0: unbounded)", nullptr},
    {nullptr, nullptr, nullptr, nullptr, nullptr},
};

PyType_Slot channel_slots[] = {
    {Py_tp_new, reinterpret_cast<void*>(channel_new)},
    {Py_tp_methods, channel_methods},
    {Py_tp_getset, channel_getset},
    {Py_tp_iter, reinterpret_cast<void*>(PyObject_SelfIter)},
    {Py_tp_iternext, reinterpret_cast<void*>(channel_iternext)},
    {Py_tp_richcompare, reinterpret_cast<void*>(ChannelType::richcompare)},
    {Py_tp_hash, reinterpret_cast<void*>(PyObject_HashNotImplemented)},
    {Py_sq_length, reinterpret_cast<void*>(channel_length)},
    {Py_tp_doc, const_cast<char*>(
                    "Channel(maxsize=0): a multi-producer multi-consumer queue between interpreters and threads.\n\n"
                    "Values travel as task arguments do (native types without pickle, SharedBuffers and Channels\n"
                    "by reference). Blocking calls release the GIL and wake on the event. Iterating receives\n"
                    "until the channel is closed and drained.")},
    {0, nullptr},
};

constexpr ChannelType kChannelType{"manygil.Channel", channel_slots};

// _ChannelWaker: an event loop's side of ChannelWaker, for manygil/_aio.py's Channel.recv_async and
// send_async.
using WakerHandle = std::shared_ptr<ChannelWaker>;
using WakerType = HandleType<WakerHandle>;

PyObject* waker_new(PyTypeObject* type, PyObject* args, PyObject* kwargs) {
    if (!PyArg_ParseTuple(args, ":_ChannelWaker") || (kwargs && PyDict_GET_SIZE(kwargs))) {
        if (!PyErr_Occurred()) PyErr_SetString(PyExc_TypeError, "_ChannelWaker() takes no arguments");
        return nullptr;
    }
    try {
        return WakerType::make(type, std::make_shared<ChannelWaker>());
    } catch (const Error& e) {
        PyErr_SetString(PyExc_OSError, e.what());
        return nullptr;
    }
}

// (channel, token, room=False): the Channel argument, an unsigned 64-bit token and what the watch
// waits for, or null with a TypeError. format: "OO|p:" and the method's name (a literal: this runs
// at every wait of recv_async and send_async).
Channel* channel_and_token(PyObject* args, const char* format, const char* fn, std::uint64_t& token,
                           ChannelAccess::Wait& what) {
    PyObject *obj, *token_obj;
    int room = 0;
    if (!PyArg_ParseTuple(args, format, &obj, &token_obj, &room)) return nullptr;
    what = room ? ChannelAccess::Wait::room : ChannelAccess::Wait::message;
    const Channel* channel = unwrap_channel(obj);
    if (!channel) {
        PyErr_Format(PyExc_TypeError, "%s: expected a manygil.Channel, not %.100s", fn, Py_TYPE(obj)->tp_name);
        return nullptr;
    }
    token = PyLong_AsUnsignedLongLong(token_obj);
    if (PyErr_Occurred()) return nullptr;
    return const_cast<Channel*>(channel);
}

PyObject* waker_arm(PyObject* self, PyObject* args) {
    std::uint64_t token;
    ChannelAccess::Wait what;
    Channel* channel = channel_and_token(args, "OO|p:arm", "arm", token, what);
    if (!channel) return nullptr;
    ChannelAccess::arm(*channel, WakerType::of(self), token, what);  // short lock, never blocks: GIL kept
    Py_RETURN_NONE;
}

PyObject* waker_disarm(PyObject* self, PyObject* args) {
    std::uint64_t token;
    ChannelAccess::Wait what;
    Channel* channel = channel_and_token(args, "OO|p:disarm", "disarm", token, what);
    if (!channel) return nullptr;
    ChannelAccess::disarm(*channel, WakerType::of(self).get(), token, what);
    Py_RETURN_NONE;
}

PyObject* waker_take_ready(PyObject* self, PyObject*) {
    std::vector<std::uint64_t> tokens = WakerType::of(self)->take_ready();
    PyObject* out = PyTuple_New(static_cast<Py_ssize_t>(tokens.size()));
    if (!out) return nullptr;
    for (std::size_t i = 0; i < tokens.size(); ++i) {
        PyObject* t = PyLong_FromUnsignedLongLong(tokens[i]);
        if (!t) {
            Py_DECREF(out);
            return nullptr;
        }
        PyTuple_SET_ITEM(out, static_cast<Py_ssize_t>(i), t);
    }
    return out;
}

PyObject* waker_fileno(PyObject* self, PyObject*) { return PyLong_FromLong(WakerType::of(self)->fd()); }

constexpr char kWakerNotPicklable[] = "a _ChannelWaker belongs to one event loop and cannot be pickled";

PyMethodDef waker_methods[] = {
    {"fileno", waker_fileno, METH_NOARGS, "fileno(): the eventfd to watch for reading (loop.add_reader)"},
    {"arm", waker_arm, METH_VARARGS,
     "arm(channel, token, room=False): mark token ready at the channel's next send or close (at once if it has a "
     "message or is closed); room=True: at its next receive or close (at once if it has room or is closed)"},
    {"disarm", waker_disarm, METH_VARARGS,
     "disarm(channel, token, room=False): drop an armed watch that has not fired (room as given to arm)"},
    {"take_ready", waker_take_ready, METH_NOARGS, "take_ready(): the tokens marked since the last call (a tuple)"},
    {"__reduce__", refuse_pickle<kWakerNotPicklable>, METH_NOARGS, nullptr},
    {nullptr, nullptr, 0, nullptr},
};

PyType_Slot waker_slots[] = {
    {Py_tp_new, reinterpret_cast<void*>(waker_new)},
    {Py_tp_methods, waker_methods},
    {Py_tp_doc, const_cast<char*>("_ChannelWaker(): an event loop's wake-up for the channels it waits on "
                                  "(internal: Channel.recv_async and send_async).")},
    {0, nullptr},
};

constexpr WakerType kWakerType{"manygil._ChannelWaker", waker_slots};

}  // namespace

PyTypeObject* channel_waker_type() { return kWakerType.type(); }

PyTypeObject* channel_type() { return kChannelType.type(); }

PyObject* channel_exception(const char* name) {
    std::string key = std::string("manygil.") + name;
    return per_interpreter(key.c_str(), [&]() -> PyObject* {
        std::string qualified = "manygil." + std::string(name);
        const char* base_name = std::string(name) == "ChannelEmpty" ? "Empty"
                                : std::string(name) == "ChannelFull" ? "Full"
                                                                     : nullptr;
        PyRef base;
        if (base_name) {  // drop-in for queue.Empty / queue.Full handlers
            PyRef queue(PyImport_ImportModule("queue"));
            if (!queue) return nullptr;
            base = PyRef(PyObject_GetAttrString(queue.get(), base_name));
            if (!base) return nullptr;
        }
        return PyErr_NewException(qualified.c_str(), base.get(), nullptr);
    });
}

PyRef wrap_channel(const Channel& channel) { return kChannelType.wrap(channel); }

const Channel* unwrap_channel(PyObject* obj) { return kChannelType.unwrap(obj); }

}  // namespace manygil::detail
