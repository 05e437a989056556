#include "manygil/channel.hpp"

#include <deque>
#include <mutex>

#include "channel_access.hpp"
#include "manygil/value.hpp"
#include "wake_signal.hpp"

namespace manygil {

struct Channel::State {
    explicit State(std::size_t max) : maxsize(max) {}
    const std::size_t maxsize;
    mutable std::mutex mu;
    detail::WakeSignal not_empty, not_full;
    std::deque<detail::Payload> items;
    bool closed = false;

    bool full() const { return maxsize && items.size() >= maxsize; }
};

Channel::Channel(std::size_t maxsize) : state_(std::make_shared<State>(maxsize)) {}

bool Channel::send(Value value, Timeout timeout) { return detail::ChannelAccess::send(*this, detail::encode(value), timeout); }

std::optional<Value> Channel::recv(Timeout timeout) {
    std::optional<detail::Payload> payload = detail::ChannelAccess::recv(*this, timeout);
    if (!payload) return std::nullopt;
    return detail::decode_value(*payload);
}

namespace detail {

bool ChannelAccess::send(Channel& channel, Payload payload, Channel::Timeout timeout) {
    Channel::State& s = *channel.state_;
    std::unique_lock lock(s.mu);
    if (!s.not_full.wait(lock, timeout, [&] { return s.closed || !s.full(); })) return false;
    if (s.closed) throw ChannelClosed();
    s.items.push_back(std::move(payload));
    lock.unlock();
    s.not_empty.notify_one();
    return true;
}

std::optional<Payload> ChannelAccess::recv(Channel& channel, Channel::Timeout timeout) {
    Channel::State& s = *channel.state_;
    std::unique_lock lock(s.mu);
    if (!s.not_empty.wait(lock, timeout, [&] { return s.closed || !s.items.empty(); })) return std::nullopt;
    if (s.items.empty()) throw ChannelClosed();  // closed and drained
    Payload payload = std::move(s.items.front());
    s.items.pop_front();
    lock.unlock();
    s.not_full.notify_one();
    return payload;
}

}  // namespace detail

void Channel::close() {
    {
        std::lock_guard lock(state_->mu);
        state_->closed = true;
    }
    state_->not_empty.notify_all();
    state_->not_full.notify_all();
}

bool Channel::closed() const {
    std::lock_guard lock(state_->mu);
    return state_->closed;
}

std::size_t Channel::size() const {
    std::lock_guard lock(state_->mu);
    return state_->items.size();
}

std::size_t Channel::maxsize() const noexcept { return state_->maxsize; }

}  // namespace manygil
