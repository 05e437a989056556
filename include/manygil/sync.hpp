// Lock, Event, Semaphore, Barrier: synchronisation across interpreters and C++ threads, with the
// semantics of Python's threading module. Each lives in C++, outside every interpreter; each
// interpreter sees it through its own wrapper (manygil.Lock, ...).
//
// Handles: each is a reference, like a shared_ptr: copies (and a Value holding one, and every Python
// wrapper) name the same object, which lives while any of them does. Distinct handles may be used from
// any threads at once; one handle object must not be assigned while another thread uses it. A
// moved-from handle may only be destroyed or assigned to. Destroying a handle never blocks.
//
// Thread safety: every member is thread-safe. Ordering is stated per type below; every operation
// synchronises through the object's own mutex, so the ordering holds between C++ threads and
// interpreters alike.
//
// Blocking: acquire() and wait() wait as timeout.hpp says (spin, then sleep; interrupted only inside
// an interruptible call, which ends the wait as a timeout would). No member needs or takes a GIL;
// hold none across a call that may block. Other members never block beyond a short lock.
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <optional>
#include <variant>

#include "manygil/errors.hpp"
#include "manygil/timeout.hpp"

namespace manygil {

// Barrier::wait() on a broken barrier (a waiter timed out or was interrupted, abort() or reset()
// was called).
class BrokenBarrier : public Error {
public:
    BrokenBarrier() : Error("the barrier is broken") {}
};

// A mutual-exclusion lock, as threading.Lock: not owned by a thread, not reentrant (acquiring it
// twice without a release waits for ever, or for the timeout). A release() happens-before the
// acquire() that next takes the lock.
class Lock {
public:
    Lock();  // unlocked
    bool acquire(Timeout timeout = std::nullopt);  // true once taken; false if the timeout passed first
    void release();                                // any thread may release; throws Error if unlocked
    bool locked() const;                           // a snapshot
    friend bool operator==(const Lock& a, const Lock& b) noexcept { return a.state_ == b.state_; }

private:
    struct State;
    std::shared_ptr<State> state_;
};

// A flag, as threading.Event. A set() happens-before every wait() that returns true, and every
// is_set() that returns true, because of it.
class Event {
public:
    Event();  // not set
    void set();    // sets the flag and wakes every waiter
    void clear();  // later wait()s block again
    bool is_set() const;
    // Waits until the flag is set: true then; false if the timeout passed first (the flag at return).
    bool wait(Timeout timeout = std::nullopt) const;
    friend bool operator==(const Event& a, const Event& b) noexcept { return a.state_ == b.state_; }

private:
    struct State;
    std::shared_ptr<State> state_;
};

// A counting semaphore, as threading.Semaphore (unbounded: release() may raise the count past its
// start). A release() happens-before the acquire() that takes what it added.
class Semaphore {
public:
    explicit Semaphore(std::size_t value = 1);
    // Waits until the count is positive, then decrements it: true; false if the timeout passed first.
    bool acquire(Timeout timeout = std::nullopt);
    void release(std::size_t n = 1);  // adds n: up to n waiters get through
    std::size_t value() const;        // a snapshot
    friend bool operator==(const Semaphore& a, const Semaphore& b) noexcept { return a.state_ == b.state_; }

private:
    struct State;
    std::shared_ptr<State> state_;
};

// A reusable barrier for `parties` waiters, as threading.Barrier (no action callable). Everything a
// party did before its wait() happens-before every wait() of that round returns.
class Barrier {
public:
    explicit Barrier(std::size_t parties);  // InvalidArgument if 0
    // Waits until `parties` waiters have arrived, then releases them all and starts a new round;
    // returns this party's arrival index (0 .. parties-1). A timeout (or an interrupt) breaks the
    // barrier for everyone; throws BrokenBarrier if it is, or becomes, broken.
    std::size_t wait(Timeout timeout = std::nullopt);
    void abort();  // breaks it: every current and later wait() throws until reset()
    void reset();  // current waiters get BrokenBarrier; the barrier is then empty and whole
    std::size_t parties() const noexcept;
    std::size_t n_waiting() const;  // a snapshot
    bool broken() const;
    friend bool operator==(const Barrier& a, const Barrier& b) noexcept { return a.state_ == b.state_; }

private:
    struct State;
    std::shared_ptr<State> state_;
};

// One of them, as a Value carries it.
using SyncPrimitive = std::variant<Lock, Event, Semaphore, Barrier>;

}  // namespace manygil
