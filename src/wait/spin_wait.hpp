// Watching for an event for a short while before sleeping on it.
//
// Waking a thread that sleeps in the kernel (a futex, under every condition variable) costs a trip
// through the scheduler: a few microseconds on a quiet machine, 30-70 us on a virtual machine that
// shares its cores. The waits on manygil's hot paths are often shorter than that: a worker waiting
// for the next task of a stream, a caller waiting for a short task's result, a receiver waiting on a
// channel that its peer answers at once. Those waits first watch the event (spin) for up to
// spin_budget(), then sleep. Spinning runs no Python code and holds no GIL and no lock.
#pragma once

#include <sched.h>

#include <chrono>
#include <cstdint>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

namespace manygil::detail {

// How long a wait spins before it sleeps: MANYGIL_SPIN_US microseconds (0 never spins), read once;
// by default 50 us, about one wake-up of a sleeping thread on a shared virtual machine.
std::chrono::steady_clock::duration spin_budget() noexcept;

// Tells the core that this is a spin loop (lets its sibling hyperthread run, saves power).
inline void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
    _mm_pause();
#elif defined(__aarch64__)
    asm volatile("yield");
#endif
}

// Polls done() until it returns true (then true) or `until` passes (then done()'s last word).
// Every few dozen polls it reads the clock and yields the core: a thread that is ready to run on this
// core, maybe the very one that will make done() true, goes first.
template <class Done>
bool spin_until(Done done, std::chrono::steady_clock::time_point until) {
    for (std::uint32_t i = 1;; ++i) {
        if (done()) return true;
        cpu_relax();
        if (i % 64 == 0) {
            if (std::chrono::steady_clock::now() >= until) return done();
            sched_yield();
        }
    }
}

}  // namespace manygil::detail
