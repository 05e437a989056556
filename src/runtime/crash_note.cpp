#include "runtime/crash_note.hpp"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <mutex>
#include <string>

namespace manygil::detail {

namespace {

// A pointer, with the initial-exec model: the handler reads it without __tls_get_addr, which may
// allocate on a thread's first access to a library's TLS block.
__attribute__((tls_model("initial-exec"))) thread_local const JobNote* t_note = nullptr;

constexpr int kSignals[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT};
struct sigaction g_previous[std::size(kSignals)];
std::once_flag g_installed;

std::size_t append(char* out, std::size_t at, std::size_t capacity, std::string_view text) noexcept {
    std::size_t n = std::min(text.size(), capacity - at);
    std::memcpy(out + at, text.data(), n);
    return at + n;
}

const char* signal_name(int sig) noexcept {
    switch (sig) {
        case SIGSEGV: return "SIGSEGV";
        case SIGBUS: return "SIGBUS";
        case SIGILL: return "SIGILL";
        case SIGFPE: return "SIGFPE";
        case SIGABRT: return "SIGABRT";
        default: return "signal";
    }
}

// Async-signal-safe: reads this thread's note, writes one line, gives the signal to the handler that
// was installed before.
void on_fatal_signal(int sig, siginfo_t* info, void*) {
    int saved_errno = errno;
    char line[512];
    std::size_t n = append(line, 0, sizeof line - 1, "manygil: fatal ");
    n = append(line, n, sizeof line - 1, signal_name(sig));
    if (const JobNote* note = t_note) {
        n = append(line, n, sizeof line - 1, " in ");
        n = append(line, n, sizeof line - 1, note->text());
    } else {
        n = append(line, n, sizeof line - 1, " outside any manygil worker's job");
    }
    line[n++] = '\n';
    [[maybe_unused]] ssize_t written = ::write(STDERR_FILENO, line, n);
    for (std::size_t i = 0; i < std::size(kSignals); ++i) {
        if (kSignals[i] == sig) sigaction(sig, &g_previous[i], nullptr);
    }
    errno = saved_errno;
    // A fault (si_code > 0) happens again when the handler returns, now into the previous handler;
    // a signal that was sent (kill, raise, abort) must be sent again. It is blocked while this
    // handler runs, so it arrives right after.
    if (!info || info->si_code <= 0) raise(sig);
}

}  // namespace

void JobNote::start(std::string_view pool, std::size_t index) noexcept {
    std::string prefix;
    try {
        prefix = std::string(pool) + " worker " + std::to_string(index);
    } catch (...) {
        prefix = "a worker";
    }
    prefix_ = append(text_, 0, kCapacity, prefix);
    job_finished();
    t_note = this;
}

void JobNote::job_started(std::string_view what) noexcept {
    std::size_t n = append(text_, prefix_, kCapacity, " while running ");
    length_ = append(text_, n, kCapacity, what);
}

void JobNote::job_finished() noexcept { length_ = append(text_, prefix_, kCapacity, " between jobs"); }

void JobNote::stop() noexcept {
    if (t_note == this) t_note = nullptr;
}

const JobNote* JobNote::current() noexcept { return t_note; }

void install_crash_notes() {
    std::call_once(g_installed, [] {
        for (std::size_t i = 0; i < std::size(kSignals); ++i) {
            struct sigaction action {};
            action.sa_sigaction = on_fatal_signal;
            // SA_ONSTACK: a stack overflow's SIGSEGV runs on the alternate stack if the thread has one
            // (faulthandler gives the main thread one).
            action.sa_flags = SA_SIGINFO | SA_ONSTACK;
            sigemptyset(&action.sa_mask);
            sigaction(kSignals[i], &action, &g_previous[i]);
        }
    });
}

}  // namespace manygil::detail
