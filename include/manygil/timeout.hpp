// Timeout, and how every blocking manygil call waits. The other headers refer here.
//
// Waiting. A blocking call (Channel::send/recv, Lock/Semaphore::acquire, Event::wait, Barrier::wait,
// and an idle Pool or Interpreter worker waiting for its next task) first watches for its event for
// up to MANYGIL_SPIN_US microseconds (environment, read once per process; default 50; 0 never spins;
// at most 1 s), then sleeps on a condition variable: no polling. Idle workers may spin longer, up to
// 1 ms more, while their recent idle spells were that short, so a stream of short tasks needs no
// kernel wake-up. Spinning runs no Python code and holds no GIL and no lock.
//
// GILs. These waits never take or release a GIL. A caller that holds one (any interpreter's) must
// release it around a call that may block: otherwise every other thread of that interpreter stops,
// and the call deadlocks if the thread that would end the wait needs that GIL. The Python wrappers
// (manygil.Channel, manygil.Lock, ...) release theirs.
//
// Interrupts. A wait made on a worker inside an interruptible call (the Python call that
// Pool::submit or Interpreter::call/submit runs, and the manygil package's tasks) ends early when that
// call is interrupted (Pool::interrupt_running, a task's timeout, Future.interrupt()), as if its
// timeout had passed. Nothing else cuts a wait short.
#pragma once

#include <chrono>
#include <optional>

namespace manygil {

// How long a blocking call may wait: nullopt (or more than 1e9 s, infinity included, or NaN) waits
// as long as needed; zero or negative checks once and never sleeps.
using Timeout = std::optional<std::chrono::duration<double>>;

}  // namespace manygil
