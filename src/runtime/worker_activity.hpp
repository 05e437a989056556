// WorkerActivity: one worker's numbers for Pool::stats(): jobs done and failed, busy time, and the
// job running now. The worker's thread records (job_started/job_finished, no GIL needed); any thread
// reads (snapshot). Its own mutex: recording never waits for a monitor or a stack dump.
#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>
#include <utility>

#include "manygil/pool.hpp"

namespace manygil::detail {

class WorkerActivity {
public:
    using Clock = std::chrono::steady_clock;

    // The worker's thread, around each job.
    void job_started(std::string what) {
        std::lock_guard lock(mu_);
        busy_ = true;
        what_ = std::move(what);
        started_at_ = Clock::now();
    }
    void job_finished(bool failed) {
        std::lock_guard lock(mu_);
        busy_ = false;
        ++done_;
        if (failed) ++failed_;
        busy_total_ += Clock::now() - started_at_;
    }

    // Any thread. Fills the counts, busy time and `current` (without its interrupt fields, which
    // the worker's monitor adds).
    WorkerStats snapshot(std::size_t index) const {
        std::lock_guard lock(mu_);
        WorkerStats s;
        s.index = index;
        s.tasks_done = done_;
        s.tasks_failed = failed_;
        auto now = Clock::now();
        s.busy_seconds = seconds(busy_total_ + (busy_ ? now - started_at_ : Clock::duration{}));
        if (busy_) {
            RunningTask t;
            t.what = what_;
            t.running_seconds = seconds(now - started_at_);
            s.current = std::move(t);
        }
        return s;
    }

private:
    static double seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

    mutable std::mutex mu_;
    bool busy_ = false;              // (mu_, like every field below)
    std::string what_;
    Clock::time_point started_at_{};
    std::uint64_t done_ = 0, failed_ = 0;
    Clock::duration busy_total_{};
};

}  // namespace manygil::detail
