// What every blocking call of the Python types shares (Lock.acquire, Event.wait, Channel.recv, ...,
// and the extension's Pool.submit_with and call_in_main): how a caller's timeout is read, and how a
// wait that an interrupt ended becomes the exception the call raises.
#pragma once

#include <Python.h>

#include "manygil/timeout.hpp"

namespace manygil::detail {

// Timeouts as Python callers pass them: one parser, three rules.
enum class TimeoutRule {
    NonNegative,  // None waits forever; 0 does not wait (Channel.send/recv, Event.wait, Barrier.wait)
    LockStyle,    // as NonNegative, and -1 also waits forever (threading.Lock.acquire's convention)
    Positive,     // a time limit: None for none, else > 0 and at most 1e9 s (Pool.submit_with)
};

// `arg` (may be null: the argument was not given, like None) into `out`: nullopt for none, else the
// seconds. False with ValueError or TypeError set when `arg` breaks the rule. The GIL held.
bool parse_timeout(PyObject* arg, Timeout& out, TimeoutRule rule = TimeoutRule::NonNegative);

// The wrappers wait without the GIL on a WakeSignal; a worker's WaitInterrupt ends such a wait when
// the call it belongs to is interrupted (wait/wake_signal.hpp). For a wait that did not succeed, with
// the GIL held: if it ended because the running call was interrupted, raises TimeoutError in its
// place (the monitor's pending asynchronous exception is withdrawn: this one stands for it, and the
// task reports manygil.Interrupted) and returns true.
bool raise_if_wait_interrupted();

}  // namespace manygil::detail
