#include "manygil/channel.hpp"

#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <deque>
#include <mutex>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "manygil/value.hpp"
#include "shared/channel_access.hpp"
#include "wait/wake_signal.hpp"

namespace manygil {

namespace {

using State = detail::ChannelAccess::State;

// Every live channel, for the cycle collector (collect_unreachable_channels() below). Never
// destroyed: channels may end during static destruction.
struct Registry {
    std::mutex mu;
    std::unordered_map<const State*, std::weak_ptr<State>> live;
};
Registry& registry() {
    static Registry* r = new Registry;
    return *r;
}

thread_local bool t_collecting = false;  // the collector drops payloads, whose handles end

template <class Fn>
void for_each_channel(const detail::Payload& payload, Fn fn) {
    for (const Value& v : payload.handles) {
        if (v.kind() == Value::Kind::Channel) fn(detail::ChannelAccess::state_of(v.as_channel()));
    }
}

}  // namespace

struct Channel::State {
    explicit State(std::size_t max) : maxsize(max) {}
    ~State() {
        {
            std::lock_guard lock(registry().mu);
            registry().live.erase(this);
        }
        for (const auto& item : items) detail::ChannelAccess::unqueued(item);  // before they end
    }
    const std::size_t maxsize;
    mutable std::mutex mu;
    detail::WakeSignal not_empty, not_full;
    std::deque<detail::Payload> items;
    bool closed = false;
    // One-shot watches of event loops waiting for a message, and for room (ChannelAccess::arm).
    using Watches = std::vector<std::pair<std::shared_ptr<detail::ChannelWaker>, std::uint64_t>>;
    Watches watches, room_watches;
    // Handles to this channel inside messages queued in any channel (itself included).
    std::atomic<std::size_t> queued_refs{0};

    bool full() const { return maxsize && items.size() >= maxsize; }
    Watches& watches_for(detail::ChannelAccess::Wait what) {
        return what == detail::ChannelAccess::Wait::room ? room_watches : watches;
    }
};

Channel::Channel(std::size_t maxsize) : state_(std::make_shared<State>(maxsize)) {
    std::lock_guard lock(registry().mu);
    registry().live.emplace(state_.get(), state_);
}

Channel::~Channel() {
    // Only queued messages would still refer to the channel once this handle is gone: it may have
    // become unreachable, alone or in a cycle. (A racing copy elsewhere makes this look reachable;
    // that copy's own end checks again.)
    if (!state_ || t_collecting) return;
    long queued_refs = static_cast<long>(state_->queued_refs.load());
    if (queued_refs > 0 && state_.use_count() - 1 <= queued_refs) {
        std::shared_ptr<State> last = std::move(state_);
        last.reset();  // if that was all, the channel ends here, with its queue
        detail::collect_unreachable_channels();
    }
}

bool Channel::send(Value value, Timeout timeout) { return detail::ChannelAccess::send(*this, detail::encode(value), timeout); }

std::optional<Value> Channel::recv(Timeout timeout) {
    std::optional<detail::Payload> payload = detail::ChannelAccess::recv(*this, timeout);
    if (!payload) return std::nullopt;
    return detail::decode_value(*payload);
}

namespace detail {

void ChannelAccess::queued(const Payload& payload) {
    for_each_channel(payload, [](State* s) { s->queued_refs.fetch_add(1); });
}

void ChannelAccess::unqueued(const Payload& payload) {
    for_each_channel(payload, [](State* s) { s->queued_refs.fetch_sub(1); });
}

bool ChannelAccess::send(Channel& channel, Payload payload, Channel::Timeout timeout) {
    State& s = *channel.state_;
    std::unique_lock lock(s.mu);
    if (!s.not_full.wait(lock, timeout, [&] { return s.closed || !s.full(); })) return false;
    if (s.closed) throw ChannelClosed();
    queued(payload);
    s.items.push_back(std::move(payload));
    State::Watches watches;
    watches.swap(s.watches);
    lock.unlock();
    s.not_empty.notify_one();
    for (auto& [waker, token] : watches) waker->ready(token);
    return true;
}

void ChannelAccess::arm(Channel& channel, std::shared_ptr<ChannelWaker> waker, std::uint64_t token, Wait what) {
    State& s = *channel.state_;
    std::unique_lock lock(s.mu);
    bool now = s.closed || (what == Wait::message ? !s.items.empty() : !s.full());
    if (now) {
        lock.unlock();
        waker->ready(token);
        return;
    }
    s.watches_for(what).emplace_back(std::move(waker), token);
}

void ChannelAccess::disarm(Channel& channel, const ChannelWaker* waker, std::uint64_t token, Wait what) {
    State& s = *channel.state_;
    std::shared_ptr<ChannelWaker> dropped;  // ends outside the lock
    std::lock_guard lock(s.mu);
    State::Watches& watches = s.watches_for(what);
    auto it = std::find_if(watches.begin(), watches.end(),
                           [&](const auto& w) { return w.first.get() == waker && w.second == token; });
    if (it == watches.end()) return;
    dropped = std::move(it->first);
    watches.erase(it);
}

ChannelWaker::ChannelWaker() : fd_(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) {
    if (fd_ < 0) throw Error(std::string("eventfd() failed: ") + std::strerror(errno));
}

ChannelWaker::~ChannelWaker() { ::close(fd_); }

void ChannelWaker::ready(std::uint64_t token) {
    bool first;
    {
        std::lock_guard lock(mu_);
        first = ready_.empty();
        ready_.push_back(token);
    }
    if (first) {
        std::uint64_t one = 1;
        while (::write(fd_, &one, sizeof one) < 0 && errno == EINTR) {
        }
    }
}

std::vector<std::uint64_t> ChannelWaker::take_ready() {
    std::vector<std::uint64_t> tokens;
    {
        std::lock_guard lock(mu_);
        std::uint64_t count;
        while (::read(fd_, &count, sizeof count) < 0 && errno == EINTR) {
        }
        tokens.swap(ready_);
    }
    std::sort(tokens.begin(), tokens.end());
    tokens.erase(std::unique(tokens.begin(), tokens.end()), tokens.end());
    return tokens;
}

std::optional<Payload> ChannelAccess::recv(Channel& channel, Channel::Timeout timeout) {
    State& s = *channel.state_;
    std::unique_lock lock(s.mu);
    if (!s.not_empty.wait(lock, timeout, [&] { return s.closed || !s.items.empty(); })) return std::nullopt;
    if (s.items.empty()) throw ChannelClosed();  // closed and drained
    Payload payload = std::move(s.items.front());
    s.items.pop_front();
    unqueued(payload);
    State::Watches watches;
    if (s.maxsize) watches.swap(s.room_watches);  // an unbounded channel's room watches fired at arm
    lock.unlock();
    s.not_full.notify_one();
    for (auto& [waker, token] : watches) waker->ready(token);
    return payload;
}

// The channels no handle outside a queue can reach: marked from the roots (channels with more
// handles than their queued references: someone outside holds one) along the handles queued
// messages carry; the rest are garbage, and their queues are emptied. Every channel's mutex is held
// meanwhile (taken in address order; a sender or receiver only ever holds one), so no message moves.
// Handles held outside the queues, by threads between recv() and decoding, by Python wrappers, or
// by the collector's own list, all count as outside: a channel may be kept, never dropped wrongly.
void collect_unreachable_channels() {
    t_collecting = true;
    std::vector<std::shared_ptr<State>> states;
    {
        std::lock_guard lock(registry().mu);
        for (const auto& [ptr, weak] : registry().live) {
            if (auto s = weak.lock()) states.push_back(std::move(s));
        }
    }
    std::sort(states.begin(), states.end());
    std::vector<std::unique_lock<std::mutex>> locks;
    for (const auto& s : states) locks.emplace_back(s->mu);

    std::unordered_map<const State*, std::size_t> queued;  // references from queued messages
    for (const auto& s : states) {
        for (const auto& item : s->items) for_each_channel(item, [&](State* t) { ++queued[t]; });
    }
    std::unordered_set<const State*> reachable;
    std::vector<const State*> todo;
    for (const auto& s : states) {
        // use_count includes `states`' own reference.
        if (s.use_count() - 1 > static_cast<long>(queued[s.get()]) && reachable.insert(s.get()).second) todo.push_back(s.get());
    }
    while (!todo.empty()) {
        const State* s = todo.back();
        todo.pop_back();
        for (const auto& item : s->items) {
            for_each_channel(item, [&](State* t) {
                if (reachable.insert(t).second) todo.push_back(t);
            });
        }
    }
    std::vector<Payload> garbage;
    for (const auto& s : states) {
        if (reachable.count(s.get())) continue;
        for (auto& item : s->items) {
            ChannelAccess::unqueued(item);
            garbage.push_back(std::move(item));
        }
        s->items.clear();
    }
    locks.clear();
    states.clear();
    garbage.clear();  // ends the handles they carried, and with the last ones their channels
    t_collecting = false;
}

}  // namespace detail

void Channel::close() {
    State::Watches watches, room_watches;
    {
        std::lock_guard lock(state_->mu);
        state_->closed = true;
        watches.swap(state_->watches);
        room_watches.swap(state_->room_watches);
    }
    state_->not_empty.notify_all();
    state_->not_full.notify_all();
    for (auto& [waker, token] : watches) waker->ready(token);
    for (auto& [waker, token] : room_watches) waker->ready(token);
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
