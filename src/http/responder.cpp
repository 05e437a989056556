// Responder (manygil/http.hpp): a Handler's answer, from any thread, posted to the connection's I/O
// thread as Completions; a stream waits (no GIL: the caller's business) while kStreamWindow bytes are
// unsent. Never touches a Connection: the I/O thread matches a completion to its connection by id
// and drops it if the connection is gone.
#include <memory>
#include <mutex>
#include <utility>

#include "http/connection.hpp"
#include "http/io_thread.hpp"
#include "manygil/http.hpp"

namespace manygil::http {

Responder& Responder::operator=(Responder&& other) noexcept {
    if (this != &other) {
        if (stream_) end(End::Abort);
        else if (io_) send(Response(500, "the request was dropped by its handler\n"));
        io_ = std::move(other.io_);
        connection_ = other.connection_;
        stream_ = std::move(other.stream_);
    }
    return *this;
}

Responder::~Responder() {
    if (stream_) end(End::Abort);
    else if (io_) send(Response(500, "the request was dropped by its handler\n"));
}

void Responder::send(Response response) {
    if (!io_ || stream_) return;
    Completion c;
    c.connection = connection_;
    if (response.stream) {
        stream_ = std::make_shared<StreamState>();
        c.stream = stream_;
        c.response = std::move(response);
        if (!io_->post(std::move(c))) stream_->close();
        return;
    }
    c.response = std::move(response);
    std::shared_ptr<IoThread> io = std::move(io_);
    io->post(std::move(c));
}

bool Responder::send_chunk(std::string bytes) {
    if (!io_ || !stream_) return false;
    {
        std::unique_lock lock(stream_->mu);
        stream_->cv.wait(lock, [&] { return stream_->closed || stream_->queued < kStreamWindow; });
        if (stream_->closed) return false;
        stream_->queued += bytes.size();
    }
    Completion c;
    c.connection = connection_;
    c.kind = Completion::Kind::Chunk;
    c.bytes = std::move(bytes);
    if (io_->post(std::move(c))) return true;
    stream_->close();
    return false;
}

Responder::ChunkResult Responder::try_send_chunk(std::string bytes, std::function<void()> when_ready) {
    if (!io_ || !stream_) return ChunkResult::Gone;
    bool full;
    {
        std::lock_guard lock(stream_->mu);
        if (stream_->closed) return ChunkResult::Gone;
        stream_->queued += bytes.size();
        full = stream_->queued >= kStreamWindow;
        // Set with the bytes counted, under the lock the I/O thread releases them under: it cannot
        // free the window before the callback is in place.
        if (full) stream_->ready = std::move(when_ready);
    }
    if (bytes.empty()) return full ? ChunkResult::Full : ChunkResult::Sent;
    Completion c;
    c.connection = connection_;
    c.kind = Completion::Kind::Chunk;
    c.bytes = std::move(bytes);
    if (io_->post(std::move(c))) return full ? ChunkResult::Full : ChunkResult::Sent;
    {
        std::lock_guard lock(stream_->mu);
        stream_->ready = nullptr;  // Gone: not called
    }
    stream_->close();
    return ChunkResult::Gone;
}

void Responder::on_gone(std::function<void()> gone) {
    if (!io_ || !gone) return;
    Completion c;
    c.connection = connection_;
    c.kind = Completion::Kind::Watch;
    c.gone = gone;
    if (!io_->post(std::move(c))) gone();  // the I/O thread has ended: nobody is there to read the answer
}

void Responder::finish() { end(End::Finish); }
void Responder::abort() { end(End::Abort); }

void Responder::end(End how) {
    if (!io_ || !stream_) return;
    Completion c;
    c.connection = connection_;
    c.kind = how == End::Finish ? Completion::Kind::Finish : Completion::Kind::Abort;
    std::shared_ptr<IoThread> io = std::move(io_);
    stream_.reset();
    io->post(std::move(c));
}

}  // namespace manygil::http
