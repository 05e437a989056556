// Server (manygil/http.hpp): checks the options, loads the TLS context and the access log's format,
// opens the listeners (listeners.cpp), starts one IoThread per io_threads, and stops them. Runs on
// the thread that owns the Server; stats() on any thread.
#include "manygil/http.hpp"

#include <unistd.h>

#include <memory>
#include <stdexcept>
#include <utility>

#include "http/io_thread.hpp"
#include "http/listeners.hpp"
#include "http/server_state.hpp"

namespace manygil::http {

Server::Server(ServerOptions options, Handler& handler) : shared_(std::make_shared<Shared>()) {
    if (options.bind.empty()) throw std::invalid_argument("the server needs at least one address to bind");
    if (options.io_threads == 0) options.io_threads = 1;
    if (options.max_pending == 0) options.max_pending = 1;
    shared_->options = std::move(options);
    shared_->handler = &handler;
    shared_->stream_bodies = handler.streams_request_bodies();
    if (shared_->options.access_log) {  // an unknown atom is refused here, before anything listens
        shared_->access_format.emplace(shared_->options.access_log_format.empty()
                                           ? kDefaultAccessLogFormat
                                           : std::string_view(shared_->options.access_log_format));
    }
    const ServerOptions& o = shared_->options;
    // The certificate first: a bad one is reported before anything listens.
    if (o.tls) shared_->tls = std::make_unique<TlsContext>(*o.tls);

    Listeners listeners = open_listeners(o);
    addresses_ = std::move(listeners.addresses);
    try {
        for (auto& set : listeners.per_thread) threads_.push_back(std::make_shared<IoThread>(shared_, std::move(set)));
    } catch (...) {
        for (auto& set : listeners.per_thread) {
            for (int fd : set) ::close(fd);
        }
        throw;
    }
    for (std::size_t t = 0; t < threads_.size(); ++t) threads_[t]->start(t);
}

Server::~Server() { stop(std::chrono::milliseconds(0)); }

std::vector<std::string> Server::addresses() const { return addresses_; }

void Server::stop(std::chrono::milliseconds grace) {
    if (stopped_) return;
    stopped_ = true;
    shared_->grace_ms.store(grace.count());
    shared_->stopping.store(true);
    for (auto& t : threads_) t->wake();
    for (auto& t : threads_) t->join();
}

ServerStats Server::stats() const {
    ServerStats s;
    s.connections_accepted = shared_->accepted.load();
    s.connections_open = shared_->open.load();
    s.requests = shared_->requests.load();
    s.responses = shared_->responses.load();
    s.rejected = shared_->rejected.load();
    s.pending = shared_->pending.load();
    s.websockets_accepted = shared_->ws_accepted.load();
    s.websockets_open = shared_->ws_open.load();
    s.websocket_messages_in = shared_->ws_in.load();
    s.websocket_messages_out = shared_->ws_out.load();
    return s;
}

}  // namespace manygil::http
