#include "manygil/asgi.hpp"

#include <Python.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <limits>
#include <system_error>
#include <utility>

#include "asgi/inbox.hpp"
#include "asgi/worker.hpp"
#include "cpython/interpreter_dict.hpp"
#include "cpython/py_ref.hpp"
#include "cpython/python_error.hpp"
#include "manygil/errors.hpp"
#include "manygil/job.hpp"
#include "runtime/call_target.hpp"
#include "wsgi/forwarded.hpp"

namespace manygil::asgi {

using manygil::detail::PyRef;

namespace detail {

// ---- Inbox ----

Inbox::Inbox() {
    efd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (efd_ < 0) throw std::system_error(errno, std::generic_category(), "cannot create an ASGI worker's eventfd");
}

Inbox::~Inbox() { ::close(efd_); }

void Inbox::signal_locked_was_idle(bool was_idle) {
    if (!was_idle) return;
    std::uint64_t one = 1;
    [[maybe_unused]] auto n = ::write(efd_, &one, sizeof one);
}

void Inbox::push(Arrival arrival) {
    bool was_idle;
    {
        std::lock_guard lock(mu_);
        arrivals_.push_back(std::move(arrival));
        was_idle = !std::exchange(signalled_, true);
    }
    signal_locked_was_idle(was_idle);
}

void Inbox::wake(std::uint64_t call) {
    bool was_idle;
    {
        std::lock_guard lock(mu_);
        woken_.push_back(call);
        was_idle = !std::exchange(signalled_, true);
    }
    signal_locked_was_idle(was_idle);
}

void Inbox::request_stop() {
    bool was_idle;
    {
        std::lock_guard lock(mu_);
        stop_ = true;
        was_idle = !std::exchange(signalled_, true);
    }
    signal_locked_was_idle(was_idle);
}

Inbox::Drained Inbox::drain() {
    // The counter first: what is pushed after the swap below writes it again.
    std::uint64_t count;
    [[maybe_unused]] auto n = ::read(efd_, &count, sizeof count);
    Drained d;
    std::lock_guard lock(mu_);
    d.arrivals.swap(arrivals_);
    d.woken.swap(woken_);
    d.stop = stop_;
    signalled_ = false;
    return d;
}

// ---- AsgiShared ----

AsgiShared::AsgiShared(AsgiOptions o, std::size_t workers) : options(std::move(o)) {
    for (std::size_t i = 0; i < workers; ++i) inboxes.push_back(std::make_shared<Inbox>());
}

void AsgiShared::log(http::LogLevel level, const std::string& text) const {
    if (level < options.log_level) return;
    if (options.log) return options.log(text);
    std::fprintf(stderr, "%s\n", text.c_str());
}

void AsgiShared::mark_started(std::optional<std::string> why) {
    {
        std::lock_guard lock(mu);
        ++started;
        if (why && !failure) failure = std::move(why);
    }
    cv.notify_all();
}

void AsgiShared::mark_ended(std::optional<std::string> why) {
    {
        std::lock_guard lock(mu);
        ++ended;
        if (why && !failure) failure = std::move(why);
    }
    cv.notify_all();
}

}  // namespace detail

namespace {

const char* lifespan_name(Lifespan l) {
    switch (l) {
        case Lifespan::On: return "on";
        case Lifespan::Off: return "off";
        case Lifespan::Auto: break;
    }
    return "auto";
}

// One worker's whole service: its event loop, from lifespan startup to shutdown (manygil._asgi.serve,
// through the package hook "asgi.serve").
class ServeJob final : public Job {
public:
    explicit ServeJob(std::shared_ptr<detail::AsgiShared> shared) : shared_(std::move(shared)) {}

    void run() noexcept override {
        std::size_t slot = shared_->next_inbox.fetch_add(1);
        if (slot >= shared_->inboxes.size()) {  // cannot happen: one job per inbox
            shared_->mark_started("an ASGI serving job found no inbox");
            shared_->mark_ended(std::nullopt);
            return;
        }
        std::shared_ptr<detail::Inbox> inbox = shared_->inboxes[slot];
        std::optional<std::string> error;
        bool reported = false;
        try {
            PyObject* serve = manygil::detail::package_hook("asgi.serve");
            if (!serve) {
                error = "ASGI serving needs the manygil Python package imported in the workers (a pool initializer "
                        "\"import manygil\")";
            } else {
                PyRef app = manygil::detail::resolve_target(shared_->options.app);
                PyRef worker = detail::new_worker(shared_, inbox);
                PyRef lifespan(PyUnicode_FromString(lifespan_name(shared_->options.lifespan)));
                PyRef timeout = shared_->options.timeout ? PyRef(PyFloat_FromDouble(shared_->options.timeout->count()))
                                                         : PyRef::borrow(Py_None);
                if (!lifespan || !timeout) manygil::detail::throw_python_error();
                PyRef done(PyObject_CallFunctionObjArgs(serve, worker.get(), app.get(), lifespan.get(), timeout.get(),
                                                        nullptr));
                reported = detail::worker_reported_start(worker.get());
                if (!done) manygil::detail::throw_python_error();
            }
        } catch (const PythonError& e) {
            error = e.traceback().empty() ? e.type_name() + ": " + e.message() : e.traceback();
            while (!error->empty() && error->back() == '\n') error->pop_back();
        } catch (const std::exception& e) {
            error = e.what();
        }
        if (PyErr_Occurred()) PyErr_Clear();
        // Requests still in the inbox are dropped (their Responders answer 500) and no more come.
        closed_inbox(*inbox);
        if (!reported) {
            shared_->mark_started(error ? error : std::optional<std::string>("the worker's loop ended before it started"));
        } else if (error) {
            shared_->log(http::LogLevel::critical, "manygil serve: a worker's ASGI event loop failed:\n" + *error);
        }
        shared_->mark_ended(std::nullopt);
    }

    void abandon(std::exception_ptr) noexcept override {
        shared_->mark_started("the pool shut down before an ASGI worker started");
        shared_->mark_ended(std::nullopt);
    }

    std::string describe() const override { return "ASGI event loop (" + shared_->options.app + ")"; }

private:
    static void closed_inbox(detail::Inbox& inbox) {
        inbox.in_flight.store(std::numeric_limits<std::size_t>::max() / 2);  // never the least loaded again
        inbox.drain();
    }

    std::shared_ptr<detail::AsgiShared> shared_;
};

}  // namespace

AsgiHandler::AsgiHandler(Pool& pool, AsgiOptions options) {
    manygil::detail::check_target(options.app);
    std::size_t workers = pool.size();
    shared_ = std::make_shared<detail::AsgiShared>(std::move(options), workers);
    for (std::size_t i = 0; i < workers; ++i) {
        try {
            pool.post(std::make_unique<ServeJob>(shared_));
        } catch (const std::exception& e) {
            shared_->mark_started(std::string("cannot start an ASGI worker: ") + e.what());
            shared_->mark_ended(std::nullopt);
        }
    }
}

AsgiHandler::~AsgiHandler() { stop(); }

std::size_t AsgiHandler::capacity() const noexcept { return shared_->inboxes.size(); }

std::optional<std::string> AsgiHandler::wait_started() {
    std::unique_lock lock(shared_->mu);
    shared_->cv.wait(lock, [&] { return shared_->failure || shared_->started >= shared_->inboxes.size(); });
    return shared_->failure;
}

namespace {

// The worker with the fewest requests in flight (ties go round, from a moving start), or null when
// none serves. I/O thread.
detail::Inbox* least_loaded(const std::vector<std::shared_ptr<detail::Inbox>>& inboxes) {
    thread_local std::size_t turn = 0;
    detail::Inbox* best = nullptr;
    std::size_t least = std::numeric_limits<std::size_t>::max() / 2;
    for (std::size_t i = 0; i < inboxes.size(); ++i) {
        detail::Inbox* in = inboxes[(turn + i) % inboxes.size()].get();
        std::size_t n = in->in_flight.load(std::memory_order_relaxed);
        if (n < least) {
            least = n;
            best = in;
        }
    }
    ++turn;
    return best;
}

constexpr const char* kNoWorker = "Service Unavailable: no ASGI worker is serving\n";

// An HTTP request's and a WebSocket upgrade's common path: the scheme (https over TLS, else the
// options'; the scope says wss / ws for a WebSocket), a trusted proxy's headers, then the inbox of
// the least-loaded worker. False when no worker serves: `a` keeps its Responder or WebSocket, and the
// caller answers 503 (kNoWorker).
bool dispatch(detail::AsgiShared& shared, detail::Arrival& a) {
    a.scheme = a.request.tls ? "https" : shared.options.url_scheme;  // a trusted proxy's word overrides
    wsgi::apply_proxy_headers(a.request, shared.options.forwarded_allow_ips, a.scheme);
    detail::Inbox* best = least_loaded(shared.inboxes);
    if (!best) return false;
    best->in_flight.fetch_add(1);
    best->push(std::move(a));
    return true;
}

}  // namespace

void AsgiHandler::handle(http::Request request, http::Responder responder) {
    detail::Arrival a;
    a.request = std::move(request);
    a.responder = std::move(responder);
    if (!dispatch(*shared_, a)) a.responder.send(http::Response(503, kNoWorker));
}

void AsgiHandler::handle_websocket(http::Request request, http::WebSocket websocket) {
    detail::Arrival a;
    a.request = std::move(request);
    a.websocket = std::move(websocket);
    a.is_websocket = true;
    if (!dispatch(*shared_, a)) a.websocket.deny(http::Response(503, kNoWorker));
}

void AsgiHandler::stop() {
    {
        std::lock_guard lock(shared_->mu);
        if (shared_->stopped) return;
        shared_->stopped = true;
    }
    for (auto& inbox : shared_->inboxes) inbox->request_stop();
    std::unique_lock lock(shared_->mu);
    shared_->cv.wait(lock, [&] { return shared_->ended >= shared_->inboxes.size(); });
}

}  // namespace manygil::asgi
