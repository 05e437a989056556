// The Python objects a worker's event loop (manygil._asgi, in the worker's interpreter) drives, as
// types created once per interpreter:
//   Worker: its inbox (inbox.hpp). fileno() (the eventfd, for loop.add_reader), drain() -> (new
//     HttpCalls, HttpCalls with news, stop?), started(error or None) (lifespan startup is over),
//     log(level, text), bind(loop.create_future or None) (where a waiting receive()/send() gets its
//     future; None when the loop ends).
//   HttpCall: one request, or one WebSocket connection (is_websocket(): then the messages are the
//     websocket.* events, and fail(403 or 503, text) and finish() deny or close it). scope(state) ->
//     the scope dict (scope.cpp). receive and send are the application's ASGI callables themselves:
//     each call returns a Step, an awaitable (coroutine-like: send/throw/close) that answers at once
//     when it can and otherwise yields a future of the bound loop, parked on the call until the
//     inbox wakes it (wake(): the call has news; drain()'s second list, and after the application
//     ends). fail(status, text), finish(): the application raised or returned.
// GIL held for all of it (the worker's own interpreter).
#pragma once

#include <Python.h>

#include <memory>
#include <optional>
#include <string>

#include "asgi/inbox.hpp"
#include "cpython/py_ref.hpp"

namespace manygil::asgi::detail {

// A new Worker object of the current interpreter. Throws PythonError.
manygil::detail::PyRef new_worker(std::shared_ptr<AsgiShared> shared, std::shared_ptr<Inbox> inbox);

// Whether the worker's loop called started() (lifespan startup over, either way).
bool worker_reported_start(PyObject* worker);

}  // namespace manygil::asgi::detail
