#include "manygil/asgi.hpp"

#include <Python.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <pthread.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <limits>
#include <random>
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
#include "runtime/interruptible_call.hpp"
#include "runtime/worker_group.hpp"
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

namespace {
std::int64_t steady_ns() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
        .count();
}
}  // namespace

void Inbox::signal_locked_was_idle(bool was_idle) {
    if (!was_idle) return;
    signalled_since.store(steady_ns(), std::memory_order_relaxed);
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

bool Inbox::stop_requested() {
    std::lock_guard lock(mu_);
    return stop_;
}

void Inbox::poke() {
    bool was_idle;
    {
        std::lock_guard lock(mu_);
        was_idle = !std::exchange(signalled_, true);
    }
    signal_locked_was_idle(was_idle);
}

void Inbox::request_retire() {
    bool was_idle;
    {
        std::lock_guard lock(mu_);
        retire_ = true;
        was_idle = !std::exchange(signalled_, true);
    }
    signal_locked_was_idle(was_idle);
}

void Inbox::recycle_failed() {
    std::lock_guard lock(mu_);
    taken_ = 0;
    recycle_said_ = false;
}

std::vector<Arrival> Inbox::take_arrivals() {
    std::lock_guard lock(mu_);
    return std::exchange(arrivals_, {});
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
    d.retire = retire_;
    signalled_ = false;
    signalled_since.store(0, std::memory_order_relaxed);
    taken_ += d.arrivals.size();
    if (limit && !recycle_said_ && taken_ >= limit) {
        recycle_said_ = true;
        d.recycle_due = true;
    }
    return d;
}

// ---- AsgiShared ----

AsgiShared::AsgiShared(AsgiOptions o, std::size_t n, Pool* p) : options(std::move(o)), workers(n), pool(p) {}

std::shared_ptr<Inbox> AsgiShared::new_inbox() {
    auto inbox = std::make_shared<Inbox>();
    std::lock_guard lock(mu);
    if (stopped) return nullptr;
    if (options.max_requests) {
        thread_local std::minstd_rand rng{std::random_device{}()};
        inbox->limit = options.max_requests +
                       (options.max_requests_jitter
                            ? std::uniform_int_distribution<std::size_t>(0, options.max_requests_jitter)(rng)
                            : 0);
    }
    live.push_back(inbox);
    ++jobs;
    return inbox;
}

void AsgiShared::add_route(const std::shared_ptr<Inbox>& inbox) {
    std::lock_guard lock(routes_mu);
    routes.push_back(inbox);
}

void AsgiShared::remove_route(const Inbox* inbox) {
    std::lock_guard lock(routes_mu);
    std::erase_if(routes, [&](const std::shared_ptr<Inbox>& r) { return r.get() == inbox; });
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

void AsgiShared::mark_ended(const Inbox* inbox) {
    if (inbox) remove_route(inbox);
    {
        std::lock_guard lock(mu);
        ++ended;
        if (inbox) std::erase_if(live, [&](const std::shared_ptr<Inbox>& l) { return l.get() == inbox; });
    }
    cv.notify_all();
}

void AsgiShared::successor_started(Inbox& inbox, const std::optional<std::string>& failure, bool on_its_worker) {
    std::shared_ptr<Inbox> old = inbox.predecessor.lock();
    if (failure) {
        // Its requests (if any came: only when no other loop served) go back to the front end as 500s
        // when its job ends; the predecessor serves on and tries again after another share.
        remove_route(&inbox);
        log(http::LogLevel::critical,
            "manygil serve: a new ASGI worker could not start (the old one serves on): " + *failure);
        if (old) {
            // Recycling: this successor's worker took the pool slot when it took this job, retiring
            // the old loop's worker, which could then never recycle again (a retired worker starts no
            // successor) while this interpreter idled in the slot. The slot goes back first, then the
            // old loop counts a new share.
            if (inbox.recycling && on_its_worker && old->serving.load()) {
                (void)manygil::detail::WorkerGroup::return_slot_to_predecessor();
            }
            old->recycle_failed();
        }
        return;
    }
    inbox.in_flight.fetch_sub(kStartingBias);
    if (old) {
        remove_route(old.get());  // nothing more arrives there once this returns
        if (old->stuck.load()) {
            // What the stuck loop never drained is served here (the front end answers what it took
            // in and never finished 504).
            for (Arrival& a : old->take_arrivals()) {
                inbox.in_flight.fetch_add(1);
                inbox.push(std::move(a));
            }
        }
        old->request_retire();
    }
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
// through the package hook "asgi.serve"), on its own inbox. A successor (recycling) is the same job
// posted by the loop it replaces.
class ServeJob final : public Job {
public:
    ServeJob(std::shared_ptr<detail::AsgiShared> shared, std::shared_ptr<detail::Inbox> inbox)
        : shared_(std::move(shared)), inbox_(std::move(inbox)) {}

    void run() noexcept override {
        const std::shared_ptr<detail::Inbox>& inbox = inbox_;
        if (inbox->successor && inbox->stop_requested()) {
            // The handler stopped before this successor started (it may even run on the worker it was
            // to replace, which took it from the queue after its own loop stopped): nothing to serve.
            shared_->remove_route(inbox.get());
            closed_inbox(*inbox);
            shared_->mark_ended(inbox.get());
            return;
        }
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
                inbox->interpreter_id.store(PyInterpreterState_GetID(PyInterpreterState_Get()));
                // The whole loop is one interruptible call: the stuck-loop watchdog interrupts it by id.
                std::uint64_t task = manygil::detail::next_task_id();
                inbox->task.store(task);
                manygil::detail::InterruptibleCall call(task, std::nullopt);
                PyRef done(PyObject_CallFunctionObjArgs(serve, worker.get(), app.get(), lifespan.get(), timeout.get(),
                                                        nullptr));
                (void)call.finish();
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
        inbox->serving.store(false);
        {
            // Recycled: the job returns only once this worker is retired, or it would take the next
            // successor job from the queue itself (another slot's, whose new interpreter is not ready).
            PyThreadState* ts = PyEval_SaveThread();
            manygil::detail::WorkerGroup::wait_current_replaced();
            PyEval_RestoreThread(ts);
        }
        // No more requests come here; those still in the inbox are dropped (their Responders answer 500).
        shared_->remove_route(inbox.get());
        closed_inbox(*inbox);
        if (!reported) {
            auto why = error ? error : std::optional<std::string>("the worker's loop ended before it started");
            if (inbox->successor) shared_->successor_started(*inbox, why, true);
            else shared_->mark_started(why);
        } else if (error) {
            shared_->log(http::LogLevel::critical, "manygil serve: a worker's ASGI event loop failed:\n" + *error);
        }
        shared_->mark_ended(inbox.get());
    }

    void abandon(std::exception_ptr) noexcept override {
        if (inbox_->successor) shared_->successor_started(*inbox_, "the pool shut down before it started", false);
        else shared_->mark_started("the pool shut down before an ASGI worker started");
        shared_->remove_route(inbox_.get());
        closed_inbox(*inbox_);
        shared_->mark_ended(inbox_.get());
    }

    std::string describe() const override { return "ASGI event loop (" + shared_->options.app + ")"; }
    // The loop recycles its own worker (max_requests, through start_current_successor): a pool that
    // also counted these jobs (max_tasks_per_worker) would start successors of its own, which take
    // the slot from under a serving loop and then sit idle.
    bool counts_as_task() const noexcept override { return false; }

private:
    static void closed_inbox(detail::Inbox& inbox) {
        inbox.in_flight.store(std::numeric_limits<std::size_t>::max() / 2);  // never the least loaded again
        inbox.drain();
    }

    std::shared_ptr<detail::AsgiShared> shared_;
    std::shared_ptr<detail::Inbox> inbox_;
};

}  // namespace

namespace detail {

bool AsgiShared::recycle(const std::shared_ptr<Inbox>& inbox) { return post_successor(inbox, true); }

bool AsgiShared::post_successor(const std::shared_ptr<Inbox>& inbox, bool start_worker) {
    std::shared_ptr<Inbox> next = new_inbox();
    if (!next) return false;  // stopping: nothing to hand over
    next->successor = true;
    next->recycling = start_worker;
    next->predecessor = inbox;
    next->in_flight.store(kStartingBias);
    auto undo = [&] {
        remove_route(next.get());
        {
            std::lock_guard lock(mu);
            std::erase_if(live, [&](const std::shared_ptr<Inbox>& l) { return l == next; });
            --jobs;
        }
        cv.notify_all();
    };
    // Routed before its job can start (with the bias, it gets requests only when no started loop
    // serves): a successor that failed at once must find its inbox there to take it out.
    add_route(next);
    std::unique_ptr<Job> job = std::make_unique<ServeJob>(shared_from_this(), next);
    if (start_worker) {
        // Recycling: the new interpreter runs this job first (not whichever successor job is queued:
        // with several starting at once, each must replace the worker that started it, or a failed
        // one would give back the wrong slot). If none can start, the caller serves on.
        if (manygil::detail::WorkerGroup::start_current_successor(job)) return true;
        undo();
        log(http::LogLevel::warning, "manygil serve: an ASGI worker could not be recycled now (the pool is "
                                     "closing, or the worker is being replaced); it serves on");
        return false;
    }
    try {
        // Stuck: the pool's replacement for the slot waits for work; every other worker is busy with
        // its own loop.
        pool->post(std::move(job));
    } catch (const std::exception& e) {  // the pool shut down meanwhile
        undo();
        log(http::LogLevel::error, std::string("manygil serve: cannot start a new ASGI worker: ") + e.what());
        return false;
    }
    return true;
}

void AsgiShared::watch() {
    pthread_setname_np(pthread_self(), "mg-asgi-watch");
    using namespace std::chrono_literals;
    const auto timeout = std::chrono::duration_cast<std::chrono::nanoseconds>(*options.timeout).count();
    std::unique_lock lock(mu);
    while (!cv.wait_for(lock, 100ms, [&] { return watch_stop; })) {
        std::vector<std::shared_ptr<Inbox>> inboxes = live;
        lock.unlock();
        // The workers the pool has retired as stuck (PoolOptions::replace_stuck_after), each with a
        // new worker in its slot that waits for a job.
        std::vector<std::int64_t> stuck;
        for (const WorkerStats& w : pool->stats().stuck) stuck.push_back(w.interpreter_id);
        for (const auto& in : inboxes) {
            if (!in->serving.load() || in->watch_stage == 2) continue;
            if (std::find(stuck.begin(), stuck.end(), in->interpreter_id.load()) != stuck.end()) {
                // Replaced: its successor job goes to the new worker. At stage 1 because our
                // interrupt stayed pending; but at stage 0 too, whenever the pool saw an interrupt
                // pending (ours, just before the loop came back and withdrew it, or anyone's: Pool::
                // interrupt) and retired the worker after the loop had come back. A loop that serves
                // is handed over all the same (it retires, finishing what it has): without a job,
                // the new worker would idle, and the retired one could never be recycled.
                in->stuck.store(true);
                int stage = std::exchange(in->watch_stage, 2);
                if (!post_successor(in, false)) in->watch_stage = stage;  // stopping; or tried again next round
                continue;
            }
            std::int64_t since = in->signalled_since.load(std::memory_order_relaxed);
            if (in->watch_stage == 0) {
                if (since == 0) {
                    // With requests in flight, a probe: a loop that is not blocked drains it at once, one
                    // blocked leaves it signalled (a blocked loop hears nothing else when no request
                    // arrives).
                    if (in->in_flight.load(std::memory_order_relaxed) > 0) in->poke();
                    continue;
                }
                if (steady_ns() - since < timeout) continue;
                // Not back at its selector for the whole timeout: a request blocks the loop (in C code,
                // or a long stretch of Python that never awaits). The interrupt raises TimeoutError
                // at its next bytecode, in the request that blocks it.
                in->interrupted.store(true);
                in->watch_stage = 1;
                pool->interrupt(in->task.load(), "the ASGI event loop was blocked past --timeout");
                log(http::LogLevel::error, "manygil serve: an ASGI worker's event loop has been blocked for over " +
                                               std::to_string(options.timeout->count()) +
                                               " s (a request blocking it in C code?): interrupted");
                continue;
            }
            // Interrupted: the pool replaces its worker if the interrupt stays pending
            // (PoolOptions::replace_stuck_after: above, next round).
            if (!in->interrupted.load()) in->watch_stage = 0;  // it came back: withdrawn at its next drain
        }
        lock.lock();
    }
}

}  // namespace detail

AsgiHandler::AsgiHandler(Pool& pool, AsgiOptions options) {
    manygil::detail::check_target(options.app);
    std::size_t workers = pool.size();
    shared_ = std::make_shared<detail::AsgiShared>(std::move(options), workers, &pool);
    for (std::size_t i = 0; i < workers; ++i) {
        std::shared_ptr<detail::Inbox> inbox = shared_->new_inbox();
        shared_->add_route(inbox);
        try {
            pool.post(std::make_unique<ServeJob>(shared_, inbox));
        } catch (const std::exception& e) {
            shared_->mark_started(std::string("cannot start an ASGI worker: ") + e.what());
            shared_->remove_route(inbox.get());
            shared_->mark_ended(inbox.get());
        }
    }
    if (shared_->options.timeout) {
        shared_->watchdog = std::thread([shared = shared_.get()] { shared->watch(); });
    }
}

AsgiHandler::~AsgiHandler() { stop(); }

std::size_t AsgiHandler::capacity() const noexcept { return shared_->workers; }

std::optional<std::string> AsgiHandler::wait_started() {
    std::unique_lock lock(shared_->mu);
    shared_->cv.wait(lock, [&] { return shared_->failure || shared_->started >= shared_->workers; });
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
// caller answers 503 (kNoWorker) once this has returned (the routes unlocked: answering may pump the
// connection into the handler again).
bool dispatch(detail::AsgiShared& shared, detail::Arrival& a) {
    a.scheme = a.request.tls ? "https" : shared.options.url_scheme;  // a trusted proxy's word overrides
    wsgi::apply_proxy_headers(a.request, shared.options.forwarded_allow_ips, a.scheme);
    std::lock_guard routes(shared.routes_mu);  // held through the push (recycling: see AsgiShared::routes)
    detail::Inbox* best = least_loaded(shared.routes);
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
    // No job is posted once `stopped` is set (new_inbox()): every loop there will be is in `live`.
    std::vector<std::shared_ptr<detail::Inbox>> live;
    {
        std::lock_guard lock(shared_->mu);
        live = shared_->live;
    }
    for (auto& inbox : live) inbox->request_stop();
    std::unique_lock lock(shared_->mu);
    shared_->watch_stop = true;
    shared_->cv.notify_all();
    lock.unlock();
    if (shared_->watchdog.joinable()) shared_->watchdog.join();
    lock.lock();
    shared_->cv.wait(lock, [&] { return shared_->ended >= shared_->jobs; });
}

}  // namespace manygil::asgi
