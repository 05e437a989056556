#include "manygil/shared_dict.hpp"

#include <array>
#include <atomic>
#include <cmath>
#include <functional>
#include <map>
#include <mutex>
#include <shared_mutex>
#include <string_view>
#include <thread>
#include <unordered_map>

#include "shared/shared_dict_access.hpp"

namespace manygil {

namespace {

using Stored = detail::SharedDictAccess::Stored;
using Ttl = SharedDict::Ttl;
using detail::Payload;

// What an entry costs beyond its key and value bytes: the map node, the entry, the payload and its
// control block (measured with glibc's malloc: about 200 bytes; rounded up, since a budget that
// undercounts lets the process grow past it).
constexpr std::size_t kEntryOverhead = 224;
constexpr std::size_t kShards = 64;  // a power of two: the shard is the hash's low bits
constexpr std::size_t kCopyBelow = 512;  // reads copy values up to this size rather than share them

std::int64_t now_ns() noexcept {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

// When an entry written now with ttl expires (0: never).
std::int64_t expiry_of(const Ttl& ttl) {
    if (!ttl) return 0;
    double s = ttl->count();
    if (!(s > 0) || !std::isfinite(s)) {
        throw InvalidArgument("a time to live must be a positive number of seconds, not " + std::to_string(s));
    }
    return now_ns() + static_cast<std::int64_t>(std::min(s, 1e9) * 1e9);
}

struct Entry {
    const std::string* key = nullptr;  // the map node's key
    Stored value;
    std::int64_t expires_at = 0;  // steady-clock ns; 0: never
    std::uint64_t version = 0;
    std::size_t charge = 0;
    // CLOCK's mark: set by readers under the shared lock (so atomic), cleared by the hand.
    mutable std::atomic<bool> referenced{false};
    Entry* prev = nullptr;  // the shard's CLOCK ring
    Entry* next = nullptr;

    bool expired(std::int64_t now) const noexcept { return expires_at != 0 && now >= expires_at; }
};

struct KeyHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
};

// Reads take no lock that other readers write to (which would move the lock's cache line from core to
// core on every read, so two workers reading would each run slower than one alone). A thread
// announces the shard it reads in a slot of its own (ReaderSlot, one cache line per thread), then
// checks the shard's `writing` flag; a writer takes the shard's mutex, raises the flag, and waits
// until no slot names its shard. Each side stores, then loads the other's word, sequentially
// consistent (Dekker's pattern), so at least one of them sees the other: either the reader sees the
// flag and backs off to the mutex, or the writer sees the reader and waits for it. A thread without
// a slot (more threads than kReaderSlots) reads under the mutex, shared.
constexpr int kReaderSlots = 16;  // threads that read without a lock; more read under the mutex

struct alignas(64) ReaderSlot {
    std::atomic<int> shard{-1};  // the shard its thread is reading now, or -1
    // Written by the slot's own thread only (so no cache line is shared by two readers); read by stats().
    std::atomic<std::uint64_t> hits{0}, misses{0};
};

// Process-wide slot numbers, one per thread that reads: the same number in every store. Freed when
// the thread ends.
class ReaderIds {
public:
    static int mine() noexcept {
        thread_local Holder holder;
        return holder.id;
    }

private:
    struct Holder {
        int id = take();
        ~Holder() {
            if (id >= 0) taken().fetch_and(~(1u << id), std::memory_order_release);
        }
    };
    static std::atomic<std::uint32_t>& taken() noexcept {
        static std::atomic<std::uint32_t> bits{0};
        return bits;
    }
    static int take() noexcept {
        std::uint32_t bits = taken().load(std::memory_order_relaxed);
        for (;;) {
            std::uint32_t free = ~bits & ((1u << kReaderSlots) - 1);
            if (!free) return -1;
            int id = __builtin_ctz(free);
            if (taken().compare_exchange_weak(bits, bits | (1u << id), std::memory_order_acquire)) return id;
        }
    }
};

struct alignas(64) Shard {
    std::atomic<bool> writing{false};  // raised by the writer holding `mutex`
    alignas(64) mutable std::shared_mutex mutex;
    std::unordered_map<std::string, Entry, KeyHash, std::equal_to<>> map;
    Entry* hand = nullptr;             // CLOCK's hand: the next entry it looks at
    std::size_t with_ttl = 0;          // entries that expire (size() purges only shards that have some)
    std::uint64_t next_version = 1;    // under the exclusive lock
    std::uint64_t evictions = 0, expirations = 0;
    mutable std::atomic<std::uint64_t> hits{0}, misses{0};

    Entry* find(std::string_view key) noexcept {
        auto it = map.find(key);
        return it == map.end() ? nullptr : &it->second;
    }
    const Entry* find(std::string_view key) const noexcept {
        auto it = map.find(key);
        return it == map.end() ? nullptr : &it->second;
    }
    // A live entry (counts the hit or miss, in the reader's slot if it has one, and marks the entry
    // for CLOCK), or nullptr.
    const Entry* read(std::string_view key, ReaderSlot* slot) const noexcept {
        const Entry* e = find(key);
        bool hit = e && !e->expired(e->expires_at ? now_ns() : 0);
        if (slot) {
            auto& counter = hit ? slot->hits : slot->misses;  // only this thread writes it
            counter.store(counter.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
        } else {
            (hit ? hits : misses).fetch_add(1, std::memory_order_relaxed);
        }
        if (!hit) return nullptr;
        if (!e->referenced.load(std::memory_order_relaxed)) e->referenced.store(true, std::memory_order_relaxed);
        return e;
    }
    void link(Entry* e) noexcept {  // behind the hand: the last the hand reaches
        if (!hand) {
            e->prev = e->next = hand = e;
            return;
        }
        e->next = hand;
        e->prev = hand->prev;
        hand->prev->next = e;
        hand->prev = e;
    }
    void unlink(Entry* e) noexcept {
        if (e->next == e) {
            hand = nullptr;
        } else {
            if (hand == e) hand = e->next;
            e->prev->next = e->next;
            e->next->prev = e->prev;
        }
    }
};

// A shard's exclusive lock: its mutex, then its `writing` flag raised and no reader slot naming it.
class WriteLock {
public:
    WriteLock(const std::array<ReaderSlot, kReaderSlots>& readers, Shard& s, int index) : s_(&s) {
        s.mutex.lock();
        s.writing.store(true, std::memory_order_seq_cst);
        for (const ReaderSlot& slot : readers) {
            // A reader holds its slot for one lookup and copy: spin, and yield if it was preempted.
            for (int spins = 0; slot.shard.load(std::memory_order_seq_cst) == index; ++spins) {
                if (spins > 100) std::this_thread::yield();
            }
        }
    }
    WriteLock(WriteLock&& o) noexcept : s_(std::exchange(o.s_, nullptr)) {}
    WriteLock(const WriteLock&) = delete;
    WriteLock& operator=(const WriteLock&) = delete;
    ~WriteLock() { unlock(); }
    void unlock() noexcept {
        if (!s_) return;
        s_->writing.store(false, std::memory_order_release);
        s_->mutex.unlock();
        s_ = nullptr;
    }

private:
    Shard* s_;
};

}  // namespace

struct SharedDict::State {
    explicit State(SharedDictOptions o) : options(o) {}

    SharedDictOptions options;
    std::array<Shard, kShards> shards;
    mutable std::array<ReaderSlot, kReaderSlots> readers;
    std::atomic<std::size_t> bytes{0};
    std::atomic<std::size_t> eviction_cursor{0};

    Shard& shard_of(std::string_view key) noexcept { return shards[KeyHash{}(key) & (kShards - 1)]; }
    const Shard& shard_of(std::string_view key) const noexcept { return shards[KeyHash{}(key) & (kShards - 1)]; }

    int index_of(const Shard& s) const noexcept { return static_cast<int>(&s - shards.data()); }

    WriteLock write_lock(Shard& s) { return WriteLock(readers, s, index_of(s)); }

    // Runs read(slot) with s protected from writers: through the thread's reader slot (no write to
    // any shared cache line), or, while a writer holds s or for a thread without a slot, under the
    // shard's mutex, shared (slot null). read must not block.
    template <class Read>
    auto with_reader(const Shard& s, Read&& read) const {
        int id = ReaderIds::mine();
        if (id >= 0) {
            ReaderSlot& slot = readers[static_cast<std::size_t>(id)];
            slot.shard.store(index_of(s), std::memory_order_seq_cst);
            if (!s.writing.load(std::memory_order_seq_cst)) {
                struct Leave {
                    ReaderSlot& slot;
                    ~Leave() { slot.shard.store(-1, std::memory_order_release); }
                } leave{slot};
                return read(&slot);
            }
            slot.shard.store(-1, std::memory_order_release);
        }
        std::shared_lock lock(s.mutex);
        return read(nullptr);
    }

    static std::size_t charge_of(std::string_view key, const Payload& value) noexcept {
        return key.size() + value.bytes.size() + value.handles.size() * sizeof(Value) + kEntryOverhead;
    }

    void check_budget(std::size_t charge) const {
        if (options.max_bytes && charge > options.max_bytes) {
            throw InvalidArgument("a key and value of " + std::to_string(charge) +
                                  " bytes (entry overhead included) exceed the SharedDict's max_bytes of " +
                                  std::to_string(options.max_bytes));
        }
    }

    // Removes e from its shard (exclusive lock held); its value goes to `released`, to be freed
    // after the lock (a value may hold the last reference to a large SharedBuffer).
    void remove(Shard& s, Entry* e, std::vector<Stored>& released) {
        s.unlink(e);
        bytes.fetch_sub(e->charge, std::memory_order_relaxed);
        if (e->expires_at) --s.with_ttl;
        released.push_back(std::move(e->value));
        s.map.erase(*e->key);
    }

    // Stores value under key in s (exclusive lock held): a new entry or a new value and version.
    Entry& put(Shard& s, std::string&& key, Payload&& value, std::int64_t expires_at, std::vector<Stored>& released) {
        std::size_t charge = charge_of(key, value);
        auto [it, fresh] = s.map.try_emplace(std::move(key));
        Entry& e = it->second;
        if (fresh) {
            e.key = &it->first;
            s.link(&e);
        } else {
            bytes.fetch_sub(e.charge, std::memory_order_relaxed);
            if (e.expires_at) --s.with_ttl;
            released.push_back(std::move(e.value));
        }
        e.value = std::make_shared<const Payload>(std::move(value));
        e.charge = charge;
        e.expires_at = expires_at;
        if (expires_at) ++s.with_ttl;
        e.version = s.next_version++;
        bytes.fetch_add(charge, std::memory_order_relaxed);
        return e;
    }

    // The writes that store one value: under the key's shard write lock, keep(entry) sees the key's live
    // entry (or nullptr) and returns true to leave the store as it is; otherwise value is stored.
    // Returns whether it stored. Checks the budget and the ttl first, evicts after.
    template <class Keep>
    bool store(std::string key, Payload value, const Ttl& ttl, Keep&& keep) {
        check_budget(charge_of(key, value));
        std::int64_t expires_at = expiry_of(ttl);
        Shard& s = shard_of(key);
        std::vector<Stored> released;
        {
            WriteLock lock = write_lock(s);
            Entry* e = s.find(key);
            if (e && e->expired(now_ns())) e = nullptr;
            if (keep(e)) return false;
            put(s, std::move(key), std::move(value), expires_at, released);
        }
        enforce_budget();
        return true;
    }

    // After a write: while over budget, visit the shards in turn (one victim per visit, so every
    // shard's CLOCK advances at the same pace, as one global CLOCK would) and evict.
    void enforce_budget() {
        if (!options.max_bytes) return;
        std::size_t idle_visits = 0;  // two turns of every shard with nothing evicted: nothing left to evict
        while (bytes.load(std::memory_order_relaxed) > options.max_bytes && idle_visits < 2 * kShards) {
            Shard& s = shards[eviction_cursor.fetch_add(1, std::memory_order_relaxed) & (kShards - 1)];
            std::vector<Stored> released;
            {
                WriteLock lock = write_lock(s);
                if (evict_one(s, released)) idle_visits = 0;
                else ++idle_visits;
            }
        }
    }

    // CLOCK in one shard, at most one turn of its hand: the first expired or unmarked entry goes; a
    // marked one loses its mark and stays. False when the turn found none (every entry had been read
    // since the hand last passed): the caller moves on to the next shard, and the entries stay unless
    // they are still unread when the hand comes back.
    bool evict_one(Shard& s, std::vector<Stored>& released) {
        std::int64_t now = now_ns();
        for (std::size_t steps = 0, limit = s.map.size(); s.hand && steps < limit; ++steps) {
            Entry* e = s.hand;
            if (e->expired(now)) {
                ++s.expirations;
                remove(s, e, released);
                return true;
            }
            if (e->referenced.exchange(false, std::memory_order_relaxed)) {
                s.hand = e->next;
                continue;
            }
            ++s.evictions;
            remove(s, e, released);
            return true;
        }
        return false;
    }

    // Drops the shard's expired entries (exclusive lock held).
    void purge_expired(Shard& s, std::vector<Stored>& released) {
        if (!s.with_ttl) return;
        std::int64_t now = now_ns();
        for (auto it = s.map.begin(); it != s.map.end();) {
            Entry* e = &(it++)->second;
            if (e->expired(now)) {
                ++s.expirations;
                remove(s, e, released);
            }
        }
    }
};

namespace {

void check_key(const Value& key, int depth = 0) {
    switch (key.kind()) {
        case Value::Kind::None: case Value::Kind::Bool: case Value::Kind::Int: case Value::Kind::BigInt:
        case Value::Kind::Float: case Value::Kind::Str: case Value::Kind::Bytes:
            return;
        case Value::Kind::Tuple:
            if (depth >= detail::kMaxDepth) throw InvalidArgument("a SharedDict key nested too deeply");
            for (const Value& item : key.as_tuple()) check_key(item, depth + 1);
            return;
        default:
            throw InvalidArgument(std::string("a SharedDict key must be None, bool, int, float, str, bytes or a tuple "
                                              "of those, not ") + key.type_name());
    }
}

void check_value(const Value& value, int depth = 0) {
    switch (value.kind()) {
        case Value::Kind::Pickled:
            throw InvalidArgument("a SharedDict stores native values only, not pickled ones");
        case Value::Kind::Tuple: case Value::Kind::List:
            if (depth < detail::kMaxDepth) {
                for (const Value& item : value.kind() == Value::Kind::Tuple ? value.as_tuple() : value.as_list()) {
                    check_value(item, depth + 1);
                }
            }
            return;
        case Value::Kind::Dict:
            if (depth < detail::kMaxDepth) {
                for (const auto& [k, v] : value.as_dict()) {
                    check_value(k, depth + 1);
                    check_value(v, depth + 1);
                }
            }
            return;
        default:
            return;
    }
}

std::string key_bytes(const Value& key) {
    check_key(key);
    Payload p = detail::encode(key);
    return std::string(p.bytes.view());
}

Payload value_payload(const Value& value) {
    check_value(value);
    return detail::encode(value);  // ConversionError past kMaxDepth
}

bool same_payload(const Payload& a, const Payload& b) {
    return a.bytes.view() == b.bytes.view() && a.handles == b.handles;
}

// The int a payload holds, if it is exactly one 64-bit int.
std::int64_t stored_int(const Payload& p) {
    detail::PayloadReader r(p.bytes);
    detail::Tag t = r.tag();
    if (t == detail::Tag::BigInt) throw InvalidArgument("incr of an int beyond 64 bits");
    if (t != detail::Tag::Int) throw NotAnInteger("incr of a value that is not an int");
    std::int64_t v = r.int64();
    if (!r.at_end()) throw NotAnInteger("incr of a value that is not an int");
    return v;
}

Payload int_payload(std::int64_t v) {
    detail::PayloadWriter w;
    w.tagged_int(v);
    return Payload{w.take(), {}};
}

}  // namespace

// -- SharedDict: Values -------------------------------------------------------------------------

SharedDict::SharedDict(SharedDictOptions options) : state_(std::make_shared<State>(options)) {}

SharedDict SharedDict::named(const std::string& name, std::optional<SharedDictOptions> options) {
    // The process's named stores, kept until it ends (never destroyed: worker threads may outlive
    // static destructors).
    static auto* mutex = new std::mutex();
    static auto* stores = new std::map<std::string, std::shared_ptr<State>, std::less<>>();
    std::lock_guard lock(*mutex);
    auto [it, fresh] = stores->try_emplace(name);
    if (fresh) {
        it->second = std::make_shared<State>(options.value_or(SharedDictOptions{}));
    } else if (options && it->second->options.max_bytes != options->max_bytes) {
        throw InvalidArgument("the SharedDict named '" + name + "' exists with max_bytes=" +
                              std::to_string(it->second->options.max_bytes) + ", not " +
                              std::to_string(options->max_bytes));
    }
    return SharedDict(it->second);
}

const SharedDictOptions& SharedDict::options() const noexcept { return state_->options; }

std::optional<Value> SharedDict::get(const Value& key) const {
    detail::SharedDictAccess::Read r = detail::SharedDictAccess::get(*this, key_bytes(key));
    if (!r) return std::nullopt;
    return detail::decode_value(r.payload());
}
bool SharedDict::contains(const Value& key) const { return detail::SharedDictAccess::contains(*this, key_bytes(key)); }
void SharedDict::set(const Value& key, const Value& value, Ttl ttl) {
    detail::SharedDictAccess::set(*this, key_bytes(key), value_payload(value), ttl);
}
bool SharedDict::add(const Value& key, const Value& value, Ttl ttl) {
    return detail::SharedDictAccess::add(*this, key_bytes(key), value_payload(value), ttl);
}
Value SharedDict::setdefault(const Value& key, const Value& dflt, Ttl ttl) {
    Stored existing = detail::SharedDictAccess::setdefault(*this, key_bytes(key), value_payload(dflt), ttl);
    return existing ? detail::decode_value(*existing) : dflt;
}
bool SharedDict::erase(const Value& key) { return detail::SharedDictAccess::erase(*this, key_bytes(key)); }
Value SharedDict::pop(const Value& key) {
    Stored s = detail::SharedDictAccess::pop(*this, key_bytes(key));
    if (!s) throw KeyNotFound("SharedDict.pop: no key " + key.repr());
    return detail::decode_value(*s);
}
std::int64_t SharedDict::incr(const Value& key, std::int64_t delta, std::optional<std::int64_t> initial) {
    try {
        return detail::SharedDictAccess::incr(*this, key_bytes(key), delta, initial);
    } catch (const KeyNotFound&) {
        throw KeyNotFound("SharedDict.incr: no key " + key.repr());
    }
}
bool SharedDict::compare_and_set(const Value& key, const std::optional<Value>& expected, const Value& desired,
                                 Ttl ttl) {
    std::optional<Payload> want;
    if (expected) want = value_payload(*expected);
    return state_->store(key_bytes(key), value_payload(desired), ttl, [&](const Entry* e) {
        return (e != nullptr) != want.has_value() || (e && !same_payload(*e->value, *want));
    });
}
void SharedDict::update(const std::vector<std::pair<Value, Value>>& items, Ttl ttl) {
    std::vector<std::pair<std::string, Payload>> encoded;
    encoded.reserve(items.size());
    for (const auto& [k, v] : items) encoded.emplace_back(key_bytes(k), value_payload(v));
    detail::SharedDictAccess::update(*this, std::move(encoded), ttl);
}
bool SharedDict::touch(const Value& key, Ttl ttl) { return detail::SharedDictAccess::touch(*this, key_bytes(key), ttl); }

void SharedDict::clear() {
    for (Shard& s : state_->shards) {
        std::vector<Stored> released;
        WriteLock lock = state_->write_lock(s);
        while (s.hand) state_->remove(s, s.hand, released);
        lock.unlock();
    }
}

std::size_t SharedDict::size() const {
    std::size_t n = 0;
    for (Shard& s : state_->shards) {
        std::vector<Stored> released;
        WriteLock lock = state_->write_lock(s);
        state_->purge_expired(s, released);
        n += s.map.size();
    }
    return n;
}

std::vector<Value> SharedDict::keys() const {
    std::vector<Value> out;
    for (const std::string& k : detail::SharedDictAccess::keys(*this)) {
        out.push_back(detail::decode_value(Payload{detail::ByteBuffer(k), {}}));
    }
    return out;
}

std::vector<std::pair<Value, Value>> SharedDict::items() const {
    std::vector<std::pair<Value, Value>> out;
    for (auto& [k, v] : detail::SharedDictAccess::items(*this)) {
        out.emplace_back(detail::decode_value(Payload{detail::ByteBuffer(k), {}}), detail::decode_value(*v));
    }
    return out;
}

SharedDictStats SharedDict::stats() const {
    SharedDictStats st;
    for (const Shard& s : state_->shards) {
        std::shared_lock lock(s.mutex);
        st.hits += s.hits.load(std::memory_order_relaxed);
        st.misses += s.misses.load(std::memory_order_relaxed);
        st.evictions += s.evictions;
        st.expirations += s.expirations;
        st.entries += s.map.size();
    }
    for (const ReaderSlot& slot : state_->readers) {
        st.hits += slot.hits.load(std::memory_order_relaxed);
        st.misses += slot.misses.load(std::memory_order_relaxed);
    }
    st.bytes = state_->bytes.load(std::memory_order_relaxed);
    st.max_bytes = state_->options.max_bytes;
    return st;
}

// -- SharedDictAccess: payloads ------------------------------------------------------------------

namespace detail {

SharedDictAccess::Read SharedDictAccess::get(const SharedDict& d, std::string_view key) {
    const SharedDict::State& st = *d.state_;
    return st.with_reader(st.shard_of(key), [&](ReaderSlot* slot) {
        Read out;
        const Shard& s = st.shard_of(key);
        if (const Entry* e = s.read(key, slot)) {
            out.found = true;
            // A small value is copied (no reference count: its counter's cache line would move between
            // the cores of every reader); a large one, or one holding shared objects, is shared.
            if (e->value->handles.empty() && e->value->bytes.size() <= kCopyBelow) {
                out.copy.bytes = ByteBuffer(e->value->bytes.view());
            } else {
                out.shared = e->value;
            }
        }
        return out;
    });
}

SharedDictAccess::Versioned SharedDictAccess::get_versioned(const SharedDict& d, std::string_view key) {
    const SharedDict::State& st = *d.state_;
    return st.with_reader(st.shard_of(key), [&](ReaderSlot* slot) {
        const Entry* e = st.shard_of(key).read(key, slot);
        return e ? Versioned{e->value, e->version} : Versioned{};
    });
}

bool SharedDictAccess::contains(const SharedDict& d, std::string_view key) {
    const SharedDict::State& st = *d.state_;
    return st.with_reader(st.shard_of(key), [&](ReaderSlot* slot) { return st.shard_of(key).read(key, slot) != nullptr; });
}

void SharedDictAccess::set(SharedDict& d, std::string key, Payload value, Ttl ttl) {
    d.state_->store(std::move(key), std::move(value), ttl, [](const Entry*) { return false; });
}

bool SharedDictAccess::add(SharedDict& d, std::string key, Payload value, Ttl ttl) {
    return d.state_->store(std::move(key), std::move(value), ttl, [](const Entry* e) { return e != nullptr; });
}

SharedDictAccess::Stored SharedDictAccess::setdefault(SharedDict& d, std::string key, Payload dflt, Ttl ttl) {
    Stored existing;
    d.state_->store(std::move(key), std::move(dflt), ttl, [&](const Entry* e) {
        if (e) existing = e->value;
        return e != nullptr;
    });
    return existing;
}

bool SharedDictAccess::set_if_version(SharedDict& d, std::string key, Payload value, std::uint64_t version, Ttl ttl) {
    return d.state_->store(std::move(key), std::move(value), ttl,
                           [&](const Entry* e) { return (e ? e->version : 0) != version; });
}

bool SharedDictAccess::erase(SharedDict& d, std::string_view key) {
    SharedDict::State& st = *d.state_;
    Shard& s = st.shard_of(key);
    std::vector<Stored> released;
    WriteLock lock = st.write_lock(s);
    Entry* e = s.find(key);
    if (!e) return false;
    bool live = !e->expired(now_ns());
    if (!live) ++s.expirations;
    st.remove(s, e, released);
    lock.unlock();
    return live;
}

SharedDictAccess::Stored SharedDictAccess::pop(SharedDict& d, std::string_view key) {
    SharedDict::State& st = *d.state_;
    Shard& s = st.shard_of(key);
    std::vector<Stored> released;
    WriteLock lock = st.write_lock(s);
    Entry* e = s.find(key);
    if (!e) {
        s.misses.fetch_add(1, std::memory_order_relaxed);
        return nullptr;
    }
    bool live = !e->expired(now_ns());
    Stored value = live ? e->value : nullptr;
    if (live) s.hits.fetch_add(1, std::memory_order_relaxed);
    else {
        ++s.expirations;
        s.misses.fetch_add(1, std::memory_order_relaxed);
    }
    st.remove(s, e, released);
    lock.unlock();
    return value;
}

std::int64_t SharedDictAccess::incr(SharedDict& d, std::string key, std::int64_t delta,
                                    std::optional<std::int64_t> initial) {
    SharedDict::State& st = *d.state_;
    Shard& s = st.shard_of(key);
    std::vector<Stored> released;
    std::int64_t sum;
    {
        WriteLock lock = st.write_lock(s);
        Entry* e = s.find(key);
        bool live = e && !e->expired(now_ns());
        std::int64_t base;
        if (live) {
            base = stored_int(*e->value);
        } else if (initial) {
            base = *initial;
        } else {
            throw KeyNotFound("SharedDict.incr: no such key");
        }
        if (__builtin_add_overflow(base, delta, &sum)) {
            throw InvalidArgument("SharedDict.incr: " + std::to_string(base) + " + " + std::to_string(delta) +
                                  " overflows 64 bits");
        }
        std::int64_t expires_at = live ? e->expires_at : 0;
        st.put(s, std::move(key), int_payload(sum), expires_at, released);
    }
    st.enforce_budget();
    return sum;
}

void SharedDictAccess::update(SharedDict& d, std::vector<std::pair<std::string, Payload>> items, Ttl ttl) {
    SharedDict::State& st = *d.state_;
    std::size_t total = 0;
    for (const auto& [k, v] : items) {
        std::size_t charge = SharedDict::State::charge_of(k, v);
        st.check_budget(charge);
        total += charge;
    }
    if (st.options.max_bytes && total > st.options.max_bytes) {
        throw InvalidArgument("update of " + std::to_string(total) + " bytes (entry overhead included) exceeds the "
                              "SharedDict's max_bytes of " + std::to_string(st.options.max_bytes));
    }
    std::int64_t expires_at = expiry_of(ttl);
    // Lock every shard involved, in index order (no deadlock with another update), then write.
    std::array<bool, kShards> involved{};
    for (const auto& kv : items) involved[&st.shard_of(kv.first) - st.shards.data()] = true;
    std::vector<WriteLock> locks;
    locks.reserve(kShards);
    for (std::size_t i = 0; i < kShards; ++i) {
        if (involved[i]) locks.push_back(st.write_lock(st.shards[i]));
    }
    std::vector<Stored> released;
    for (auto& [k, v] : items) {
        Shard& s = st.shard_of(k);
        st.put(s, std::move(k), std::move(v), expires_at, released);
    }
    locks.clear();
    released.clear();
    st.enforce_budget();
}

bool SharedDictAccess::touch(SharedDict& d, std::string_view key, Ttl ttl) {
    std::int64_t expires_at = expiry_of(ttl);
    Shard& s = d.state_->shard_of(key);
    WriteLock lock = d.state_->write_lock(s);
    Entry* e = s.find(key);
    if (!e || e->expired(now_ns())) return false;
    if (e->expires_at) --s.with_ttl;
    e->expires_at = expires_at;
    if (expires_at) ++s.with_ttl;
    return true;
}

std::vector<std::string> SharedDictAccess::keys(const SharedDict& d) {
    std::vector<std::string> out;
    std::int64_t now = now_ns();
    for (const Shard& s : d.state_->shards) {
        std::shared_lock lock(s.mutex);
        for (const auto& [k, e] : s.map) {
            if (!e.expired(now)) out.push_back(k);
        }
    }
    return out;
}

std::vector<std::pair<std::string, SharedDictAccess::Stored>> SharedDictAccess::items(const SharedDict& d) {
    std::vector<std::pair<std::string, Stored>> out;
    std::int64_t now = now_ns();
    for (const Shard& s : d.state_->shards) {
        std::shared_lock lock(s.mutex);
        for (const auto& [k, e] : s.map) {
            if (!e.expired(now)) out.emplace_back(k, e.value);
        }
    }
    return out;
}

}  // namespace detail

}  // namespace manygil
