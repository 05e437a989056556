// Synchronisation that works across interpreters and C++ threads, with the semantics of Python's
// threading module: Lock, Event, Semaphore, Barrier. Each lives outside every interpreter and is shared
// by reference (copies are the same object); each interpreter sees it through its own wrapper.
// Blocking calls wait on a condition variable, after watching for their event for MANYGIL_SPIN_US
// microseconds (default 50, 0 = never); callers holding a GIL must release it (the Python wrappers do).
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <optional>
#include <variant>

#include "manygil/errors.hpp"
#include "manygil/timeout.hpp"

namespace manygil {

// Barrier::wait() on a broken barrier (a waiter timed out, abort() or reset() was called).
class BrokenBarrier : public Error {
public:
    BrokenBarrier() : Error("the barrier is broken") {}
};

class Lock {
public:
    Lock();
    bool acquire(Timeout timeout = std::nullopt);  // false if the timeout passed first
    void release();                                // any thread may release; Error if not locked
    bool locked() const;
    friend bool operator==(const Lock& a, const Lock& b) noexcept { return a.state_ == b.state_; }
    struct State;

private:
    std::shared_ptr<State> state_;
};

class Event {
public:
    Event();
    void set();
    void clear();
    bool is_set() const;
    bool wait(Timeout timeout = std::nullopt) const;  // the flag at return
    friend bool operator==(const Event& a, const Event& b) noexcept { return a.state_ == b.state_; }
    struct State;

private:
    std::shared_ptr<State> state_;
};

class Semaphore {
public:
    explicit Semaphore(std::size_t value = 1);
    bool acquire(Timeout timeout = std::nullopt);
    void release(std::size_t n = 1);
    std::size_t value() const;
    friend bool operator==(const Semaphore& a, const Semaphore& b) noexcept { return a.state_ == b.state_; }
    struct State;

private:
    std::shared_ptr<State> state_;
};

class Barrier {
public:
    explicit Barrier(std::size_t parties);  // InvalidArgument if 0
    // Returns this party's arrival index (0 .. parties-1). A timeout breaks the barrier; throws
    // BrokenBarrier if it is (or becomes) broken.
    std::size_t wait(Timeout timeout = std::nullopt);
    void abort();  // breaks it: every current and later wait() throws until reset()
    void reset();  // current waiters get BrokenBarrier; the barrier is then empty and whole
    std::size_t parties() const noexcept;
    std::size_t n_waiting() const;
    bool broken() const;
    friend bool operator==(const Barrier& a, const Barrier& b) noexcept { return a.state_ == b.state_; }
    struct State;

private:
    std::shared_ptr<State> state_;
};

// One of them, as a Value carries it.
using SyncPrimitive = std::variant<Lock, Event, Semaphore, Barrier>;

}  // namespace manygil
