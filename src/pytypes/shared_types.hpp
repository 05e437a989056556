// The shared objects' Python types, as a module exports them (manygil._core, or a C++ host's own
// module): what the extension needs of pytypes/ besides the blocking-call rules (blocking_call.hpp).
#pragma once

#include <Python.h>

namespace manygil::detail {

// Adds SharedBuffer, Channel, SharedDict, Lock, Event, Semaphore and Barrier to `module`: this
// interpreter's types (each interpreter has its own; they wrap the same C++ handles). The GIL held.
// 0 on success; -1 with an exception set (ImportError when a type could not be created).
int add_shared_types(PyObject* module) noexcept;

// The channel exceptions (ChannelClosed, ChannelEmpty, ChannelFull) subclass queue.Empty and
// queue.Full, and importing queue costs a worker about 2 ms at start, so a module makes them on first
// use (its __getattr__, PEP 562). For `name` one of them: adds it to `module` and returns a new
// reference (cached per interpreter), or null with ImportError set. Null with no error set for any
// other name. The GIL held.
PyObject* add_channel_exception(PyObject* module, const char* name) noexcept;

}  // namespace manygil::detail
