// The Python objects a worker's event loop (manygil._asgi, in the worker's interpreter) drives, as
// types created once per interpreter:
//   Worker: its inbox (inbox.hpp). fileno() (the eventfd, for loop.add_reader), drain() -> (new
//     HttpCalls, HttpCalls with news, stop?), started(error or None) (lifespan startup is over),
//     log(level, text).
//   HttpCall: one request, or one WebSocket connection (is_websocket(): then the messages are the
//     websocket.* events, fail(403 or 503, text) and finish() deny or close it, and a send() that
//     answered 1 waits while blocked()). scope(state) -> the scope dict (scope.cpp); receive() -> the next
//     message, or None while the caller must wait (park a future; it is woken through the inbox);
//     send(message) -> 0 (go on), 1 (wait: the stream's window is full), 2 (the response is complete:
//     wake the receivers); park(future) / unpark() -> the parked futures; fail(status, text),
//     finish(): the application raised or returned.
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
