// Timeouts as Python callers pass them, for every blocking call and task limit: one parser, three rules.
#pragma once

#include <Python.h>

#include "manygil/timeout.hpp"

namespace manygil::detail {

enum class TimeoutRule {
    NonNegative,  // None waits forever; 0 does not wait (Channel.send/recv, Event.wait, Barrier.wait)
    LockStyle,    // as NonNegative, and -1 also waits forever (threading.Lock.acquire's convention)
    Positive,     // a time limit: None for none, else > 0 and at most 1e9 s (Pool.submit_with)
};

// `arg` (may be null: the argument was not given, like None) into `out`: nullopt for none, else the
// seconds. False with ValueError or TypeError set when `arg` breaks the rule. The GIL held.
bool parse_timeout(PyObject* arg, Timeout& out, TimeoutRule rule = TimeoutRule::NonNegative);

}  // namespace manygil::detail
