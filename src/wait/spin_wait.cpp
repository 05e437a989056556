#include "wait/spin_wait.hpp"

#include <algorithm>
#include <cstdlib>

namespace manygil::detail {

namespace {

std::chrono::steady_clock::duration read_spin_budget() noexcept {
    constexpr long kDefaultMicroseconds = 50;
    const char* text = std::getenv("MANYGIL_SPIN_US");
    long us = kDefaultMicroseconds;
    if (text && *text) {
        char* end = nullptr;
        long parsed = std::strtol(text, &end, 10);
        if (end && *end == '\0' && parsed >= 0) us = std::min(parsed, 1'000'000L);  // else: the default
    }
    return std::chrono::microseconds(us);
}

}  // namespace

std::chrono::steady_clock::duration spin_budget() noexcept {
    static const std::chrono::steady_clock::duration budget = read_spin_budget();
    return budget;
}

}  // namespace manygil::detail
