// The Python wrappers of blocking calls (Lock.acquire, Event.wait, Channel.recv, ...) wait without
// the GIL on a WakeSignal; a worker's WaitInterrupt ends such a wait when the call it belongs to is
// interrupted (wait/wake_signal.hpp). This turns that ending into the exception the call raises.
#pragma once

namespace manygil::detail {

// For a wait that did not succeed, with the GIL held: if it ended because the running call was
// interrupted, raises TimeoutError in its place (the monitor's pending asynchronous exception is
// withdrawn: this one stands for it, and the task reports manygil.Interrupted) and returns true.
bool raise_if_wait_interrupted();

}  // namespace manygil::detail
