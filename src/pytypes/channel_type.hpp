// manygil.Channel, the Python face of manygil::Channel, and its exceptions (ChannelClosed,
// ChannelEmpty, ChannelFull): heap types created once per interpreter and cached in the interpreter's
// dict, like SharedBuffer. Each interpreter has its own wrappers; the queue is shared. GIL held.
#pragma once

#include <Python.h>

#include "manygil/channel.hpp"
#include "cpython/py_ref.hpp"

namespace manygil::detail {

// The Channel type of the current interpreter (borrowed). Throws PythonError.
PyTypeObject* channel_type();
// _ChannelWaker of the current interpreter (borrowed): an event loop's wake-up for recv_async.
PyTypeObject* channel_waker_type();
// ChannelClosed, ChannelEmpty (a queue.Empty), ChannelFull (a queue.Full) of this interpreter (borrowed).
PyObject* channel_exception(const char* name);

PyRef wrap_channel(const Channel& channel);
const Channel* unwrap_channel(PyObject* obj);

}  // namespace manygil::detail
