// Crash notes: when a fatal signal (SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT) hits a worker thread,
// one line on stderr says which worker it was and which job it ran ("WSGI GET /crash"), before the
// handler that was there before (Python's faulthandler, a sanitizer's, the default action) takes
// over. Runtime::note_jobs_on_fatal_signals() installs the handlers; the notes are kept up to date by
// every worker whether installed or not (a copy of the job's name per job).
//
// Threads: a JobNote is written only by its worker's own thread and read only by a signal handler
// on that same thread, so it needs no lock; the handler only reads it and calls write(2).
#pragma once

#include <cstddef>
#include <string_view>

namespace manygil::detail {

class JobNote {
public:
    // The worker's thread, once it serves a group: "<pool> worker <index>"; makes it this thread's note.
    void start(std::string_view pool, std::size_t index) noexcept;
    // The worker's thread, around each job.
    void job_started(std::string_view what) noexcept;
    void job_finished() noexcept;
    // The worker's thread, when it stops serving the group: no note for this thread any more.
    void stop() noexcept;

    // The calling thread's note, or null (for the signal handler).
    static const JobNote* current() noexcept;
    // "<pool> worker <index> while running <job>" or "<pool> worker <index> between jobs".
    std::string_view text() const noexcept { return {text_, length_}; }

private:
    static constexpr std::size_t kCapacity = 384;
    char text_[kCapacity] = {};
    std::size_t prefix_ = 0;  // the "<pool> worker <index>" part
    volatile std::size_t length_ = 0;
};

// Installs the fatal-signal handlers (idempotent; any thread; no GIL).
void install_crash_notes();

}  // namespace manygil::detail
