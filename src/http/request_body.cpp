// RequestBody (manygil/http.hpp): a request body streamed to the Handler. The connection's I/O thread
// pushes bytes, the end or a failure into the shared RequestBodyState; the consumer reads them from
// any thread and acknowledges them; acknowledgements that bring a paused connection back under the
// window post a BodyAck so that its I/O thread reads again. Never touches a Connection.
#include <algorithm>
#include <memory>
#include <mutex>
#include <utility>

#include "http/connection.hpp"
#include "http/io_thread.hpp"
#include "manygil/http.hpp"

namespace manygil::http {

void RequestBodyState::push(std::string bytes, bool end) {
    std::function<void()> tell;
    {
        std::lock_guard lock(mu);
        if (ended || failed) return;
        unacked += bytes.size();
        if (data.empty()) data = std::move(bytes);
        else data += bytes;
        ended = end;
        if (!data.empty() || ended) tell = std::exchange(ready, nullptr);
    }
    if (tell) tell();
}

void RequestBodyState::fail(std::string why) {
    std::function<void()> tell;
    {
        std::lock_guard lock(mu);
        if (ended || failed) return;
        failed = true;
        error = std::move(why);
        tell = std::exchange(ready, nullptr);
    }
    if (tell) tell();
}

bool RequestBodyState::pause_if_full() {
    std::lock_guard lock(mu);
    paused = unacked > RequestBody::kWindow && !ended && !failed;
    return paused;
}

RequestBody::Status RequestBody::read(std::string& out) {
    if (!state_) return Status::End;
    std::lock_guard lock(state_->mu);
    RequestBodyState& s = *state_;
    if (s.data.empty()) return s.failed ? Status::Failed : s.ended ? Status::End : Status::Waiting;
    if (out.empty()) out = std::move(s.data);
    else out += s.data;
    s.data.clear();
    return s.ended ? Status::End : Status::Data;
}

void RequestBody::when_ready(std::function<void()> ready) {
    if (!state_) return ready();
    {
        std::lock_guard lock(state_->mu);
        RequestBodyState& s = *state_;
        if (s.data.empty() && !s.ended && !s.failed) {
            s.ready = std::move(ready);
            return;
        }
    }
    ready();
}

void RequestBody::consumed(std::size_t bytes) {
    if (!state_) return;
    std::shared_ptr<IoThread> io;
    {
        std::lock_guard lock(state_->mu);
        RequestBodyState& s = *state_;
        s.unacked -= std::min(s.unacked, bytes);
        if (!s.paused || s.unacked > kWindow) return;
        s.paused = false;
        io = s.io.lock();
    }
    if (!io) return;
    Completion c;
    c.connection = state_->connection;
    c.kind = Completion::Kind::BodyAck;
    io->post(std::move(c));
}

std::string RequestBody::error() const {
    if (!state_) return {};
    std::lock_guard lock(state_->mu);
    return state_->error;
}

}  // namespace manygil::http
