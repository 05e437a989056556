#include "codec/crossing.hpp"

#include <atomic>
#include <cstddef>
#include <mutex>
#include <stdexcept>

namespace manygil::detail {

namespace {

// Indexed by Value::Kind; a few entries in use. Written under g_mu, read without it: an entry, once
// published, is a pointer to static data.
constexpr std::size_t kMaxKinds = 32;
std::atomic<const CrossingType*> g_by_kind[kMaxKinds];
// The registered entries in registration order, for the encoder's scan: g_count published last.
std::atomic<const CrossingType*> g_entries[kMaxKinds];
std::atomic<std::size_t> g_count{0};
std::mutex g_mu;

std::size_t index_of(Value::Kind kind) noexcept { return static_cast<std::size_t>(kind); }

}  // namespace

void register_crossing_type(const CrossingType& type) {
    std::size_t k = index_of(type.kind);
    if (k >= kMaxKinds) throw std::logic_error("register_crossing_type: a Value kind beyond the registry's size");
    if (g_by_kind[k].load(std::memory_order_acquire) == &type) return;  // the common case: registered
    std::lock_guard lock(g_mu);
    const CrossingType* old = g_by_kind[k].load(std::memory_order_relaxed);
    if (old == &type) return;
    std::size_t n = g_count.load(std::memory_order_relaxed);
    if (old) {
        for (std::size_t i = 0; i < n; ++i) {
            if (g_entries[i].load(std::memory_order_relaxed) == old) g_entries[i].store(&type, std::memory_order_release);
        }
    } else {
        g_entries[n].store(&type, std::memory_order_relaxed);
        g_count.store(n + 1, std::memory_order_release);
    }
    g_by_kind[k].store(&type, std::memory_order_release);
}

bool unwrap_crossing(PyObject* obj, std::vector<Value>& handles) {
    std::size_t n = g_count.load(std::memory_order_acquire);
    for (std::size_t i = 0; i < n; ++i) {
        if (g_entries[i].load(std::memory_order_acquire)->unwrap(obj, handles)) return true;
    }
    return false;
}

const CrossingType* crossing_type(Value::Kind kind) noexcept {
    std::size_t k = index_of(kind);
    return k < kMaxKinds ? g_by_kind[k].load(std::memory_order_acquire) : nullptr;
}

}  // namespace manygil::detail
