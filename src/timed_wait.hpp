// Waiting on a condition variable for a predicate, with a manygil::Timeout.
#pragma once

#include <condition_variable>
#include <mutex>

#include "manygil/timeout.hpp"

namespace manygil::detail {

// Waits until pred() or the timeout passes; returns pred().
template <class Pred>
bool timed_wait(std::unique_lock<std::mutex>& lock, std::condition_variable& cv, const Timeout& timeout, Pred pred) {
    if (!timeout) {
        cv.wait(lock, pred);
        return true;
    }
    auto deadline =
        std::chrono::steady_clock::now() + std::chrono::duration_cast<std::chrono::steady_clock::duration>(*timeout);
    return cv.wait_until(lock, deadline, pred);
}

}  // namespace manygil::detail
