#include "manygil/sync.hpp"

#include <cstdint>
#include <mutex>

#include "wait/wake_signal.hpp"

namespace manygil {

// --- Lock ---------------------------------------------------------------------------------------------

struct Lock::State {
    mutable std::mutex mu;
    detail::WakeSignal signal;
    bool held = false;
};

Lock::Lock() : state_(std::make_shared<State>()) {}

bool Lock::acquire(Timeout timeout) {
    std::unique_lock lock(state_->mu);
    if (!state_->signal.wait(lock, timeout, [&] { return !state_->held; })) return false;
    state_->held = true;
    return true;
}

void Lock::release() {
    {
        std::lock_guard lock(state_->mu);
        if (!state_->held) throw Error("release unlocked lock");
        state_->held = false;
    }
    state_->signal.notify_one();
}

bool Lock::locked() const {
    std::lock_guard lock(state_->mu);
    return state_->held;
}

// --- Event --------------------------------------------------------------------------------------------

struct Event::State {
    mutable std::mutex mu;
    mutable detail::WakeSignal signal;
    bool flag = false;
};

Event::Event() : state_(std::make_shared<State>()) {}

void Event::set() {
    {
        std::lock_guard lock(state_->mu);
        state_->flag = true;
    }
    state_->signal.notify_all();
}

void Event::clear() {
    std::lock_guard lock(state_->mu);
    state_->flag = false;
}

bool Event::is_set() const {
    std::lock_guard lock(state_->mu);
    return state_->flag;
}

bool Event::wait(Timeout timeout) const {
    std::unique_lock lock(state_->mu);
    return state_->signal.wait(lock, timeout, [&] { return state_->flag; });
}

// --- Semaphore ----------------------------------------------------------------------------------------

struct Semaphore::State {
    explicit State(std::size_t v) : value(v) {}
    mutable std::mutex mu;
    detail::WakeSignal signal;
    std::size_t value;
};

Semaphore::Semaphore(std::size_t value) : state_(std::make_shared<State>(value)) {}

bool Semaphore::acquire(Timeout timeout) {
    std::unique_lock lock(state_->mu);
    if (!state_->signal.wait(lock, timeout, [&] { return state_->value > 0; })) return false;
    --state_->value;
    return true;
}

void Semaphore::release(std::size_t n) {
    {
        std::lock_guard lock(state_->mu);
        state_->value += n;
    }
    if (n == 1) state_->signal.notify_one();
    else state_->signal.notify_all();
}

std::size_t Semaphore::value() const {
    std::lock_guard lock(state_->mu);
    return state_->value;
}

// --- Barrier ------------------------------------------------------------------------------------------

struct Barrier::State {
    explicit State(std::size_t p) : parties(p) {}
    const std::size_t parties;
    mutable std::mutex mu;
    detail::WakeSignal signal;
    std::size_t count = 0;          // arrived in the current generation
    std::uint64_t generation = 0;   // bumped when a generation is released or reset
    std::uint64_t reset_generation = UINT64_MAX;  // the generation a reset() broke
    bool broken = false;
};

Barrier::Barrier(std::size_t parties) {
    if (parties == 0) throw InvalidArgument("a Barrier needs at least one party");
    state_ = std::make_shared<State>(parties);
}

std::size_t Barrier::wait(Timeout timeout) {
    State& s = *state_;
    std::unique_lock lock(s.mu);
    if (s.broken) throw BrokenBarrier();
    std::uint64_t generation = s.generation;
    std::size_t index = s.count++;
    if (s.count == s.parties) {  // the last arrival releases everyone
        s.count = 0;
        ++s.generation;
        lock.unlock();
        s.signal.notify_all();
        return index;
    }
    bool released = s.signal.wait(lock, timeout, [&] { return s.generation != generation || s.broken; });
    if (s.generation != generation) {
        if (s.reset_generation == generation) throw BrokenBarrier();  // reset() while we waited
        return index;
    }
    if (!released) {  // our timeout breaks it for everyone, as threading.Barrier does
        s.broken = true;
        s.signal.notify_all();
    }
    throw BrokenBarrier();
}

void Barrier::abort() {
    {
        std::lock_guard lock(state_->mu);
        state_->broken = true;
    }
    state_->signal.notify_all();
}

void Barrier::reset() {
    {
        std::lock_guard lock(state_->mu);
        if (state_->count > 0) state_->reset_generation = state_->generation;
        ++state_->generation;
        state_->count = 0;
        state_->broken = false;
    }
    state_->signal.notify_all();
}

std::size_t Barrier::parties() const noexcept { return state_->parties; }

std::size_t Barrier::n_waiting() const {
    std::lock_guard lock(state_->mu);
    return state_->count;
}

bool Barrier::broken() const {
    std::lock_guard lock(state_->mu);
    return state_->broken;
}

}  // namespace manygil
