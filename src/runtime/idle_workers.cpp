#include "runtime/idle_workers.hpp"

#include <algorithm>
#include <new>

#include "manygil/pool.hpp"

namespace manygil::detail {

IdleWorkers::IdleWorkers() : limit_(Pool::default_workers()) {}

IdleWorkers& IdleWorkers::instance() {
    // Never destroyed: parked threads may still use it while static destructors run at exit (they
    // have all been drained by then; see Runtime::close()).
    static IdleWorkers* idle = new IdleWorkers();
    return *idle;
}

std::shared_ptr<IdleWorkers::Slot> IdleWorkers::offer() {
    std::lock_guard lock(mu_);
    if (draining_ || parked_.size() >= limit_) return nullptr;
    auto slot = std::make_shared<Slot>();
    slot->thread = std::this_thread::get_id();
    parked_.push_back(slot);
    return slot;
}

IdleWorkers::Assignment IdleWorkers::wait(const std::shared_ptr<Slot>& slot) {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return slot->assigned || slot->end; });
    if (slot->end) return {};
    return std::move(slot->next);
}

void IdleWorkers::ended() {
    {
        std::lock_guard lock(mu_);
        --ending_;
    }
    ended_cv_.notify_all();
}

std::vector<std::thread::id> IdleWorkers::adopt(const std::shared_ptr<WorkerGroup>& group, std::size_t first,
                                                std::size_t wanted) {
    std::vector<std::thread::id> taken;
    {
        std::lock_guard lock(mu_);
        // Most recently parked first: their memory is the likeliest to be warm.
        while (taken.size() < wanted && !parked_.empty()) {
            std::shared_ptr<Slot> slot = std::move(parked_.back());
            parked_.pop_back();
            slot->next = {group, first + taken.size()};
            slot->assigned = true;
            taken.push_back(slot->thread);
        }
    }
    if (!taken.empty()) cv_.notify_all();
    return taken;
}

void IdleWorkers::drain() {
    std::unique_lock lock(mu_);
    draining_ = true;
    for (auto& slot : parked_) slot->end = true;
    ending_ += parked_.size();
    parked_.clear();
    cv_.notify_all();
    ended_cv_.wait(lock, [&] { return ending_ == 0; });
}

void IdleWorkers::resume() {
    std::lock_guard lock(mu_);
    draining_ = false;
}

void IdleWorkers::forget_after_fork() noexcept {
    // The mutex may have been held by a thread that does not exist here: start from a fresh state.
    new (&mu_) std::mutex();
    new (&cv_) std::condition_variable();
    new (&ended_cv_) std::condition_variable();
    // Leaked on purpose: their destructors would run code of the parent's threads' state.
    new (&parked_) std::vector<std::shared_ptr<Slot>>();
    ending_ = 0;
    draining_ = false;
}

void IdleWorkers::set_limit(std::size_t limit) {
    std::lock_guard lock(mu_);
    limit_ = limit;
    while (parked_.size() > limit_) {
        parked_.back()->end = true;
        ++ending_;
        parked_.pop_back();
    }
    cv_.notify_all();
}

std::size_t IdleWorkers::limit() const {
    std::lock_guard lock(mu_);
    return limit_;
}

std::size_t IdleWorkers::parked() const {
    std::lock_guard lock(mu_);
    return parked_.size();
}

}  // namespace manygil::detail
