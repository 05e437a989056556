// manygil::SharedDict: one key-value store for every thread and interpreter of the process, optionally a
// cache (a byte budget with CLOCK eviction, a time to live per key). Keys and values are stored encoded
// (the payload format values cross interpreters in) in C++ memory that belongs to no interpreter; a
// read decodes a new Value (or, from Python, new objects in the reader's interpreter); SharedBuffer,
// Channel and sync values are stored by reference.
//
// Keys: None, bool, int, float, str, bytes and tuples of those (what Python can hash, minus objects
// compared by identity). Two keys are the same key when they encode the same: unlike a dict, 1, 1.0
// and True are three keys (as in Redis, where keys are strings, nothing converts), and so are 0.0
// and -0.0. Other keys: InvalidArgument. Values: any Value but Pickled; nested as deep as the codec
// allows (ConversionError beyond).
//
// Handles: a SharedDict is a reference, like a shared_ptr: copies (and a Value holding it, and every
// Python wrapper) name the same store, which lives while any of them does (named() ones for the whole
// process). A store that holds a handle to itself, directly or through another store, is never freed. Distinct handles may be used from
// any threads at once; one handle object must not be assigned while another thread uses it.
//
// Thread safety: every member is thread-safe and atomic with respect to the others: a reader sees a
// value whole, set/incr/compare_and_set/update/pop/setdefault are each one step (update() all of
// its keys at once, or none of them). Keys live in 64 shards. A writer holds its shard's lock only to
// change an entry (never while encoding, never across a wait) and blocks only that shard. A read
// takes no lock that other readers write: the reading thread marks the shard in a slot of its own
// (one cache line per thread, 16 threads at a time; more read under the shard's lock, shared), so
// readers of any keys, on any cores, never contend; a reader waits only for a writer of its shard.
// No member needs or takes a GIL, and none blocks beyond those short sections; values are decoded
// by the caller after them (small ones copied out, large ones shared by reference).
//
// Eviction (max_bytes > 0): a write that takes the store past its budget evicts until it is back
// under, by CLOCK ("second chance": each read marks its entry; the hand spares a marked entry once
// and takes the first unmarked one), shard by shard from the writer's. CLOCK rather than exact LRU
// because a read then only sets a flag under the shared lock, where LRU must move the entry in a list
// under an exclusive one, so readers of one shard would contend; it keeps most of LRU's hit rate
// (memcached and Linux's page cache make the same choice). Expired entries go first. A value that
// alone exceeds the budget is refused (InvalidArgument), never stored by evicting everything. A write
// stores first and evicts after, so while writers run at once the store may stand over the budget by
// the values they are still evicting for; it is back under once they return.
//
// Time to live: per key, counted from the write on the steady clock; an expired key reads as absent
// and is dropped on the next access to it, by eviction, or by size()/keys()/items().
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "manygil/errors.hpp"

namespace manygil {

class Value;  // manygil/value.hpp, which includes this header: a Value may hold a SharedDict
namespace detail {
struct SharedDictAccess;
}

// incr() of a key that holds something other than an int.
class NotAnInteger : public InvalidArgument {
public:
    using InvalidArgument::InvalidArgument;
};

// A key absent (or expired) where the call needs it: incr() without an initial value, pop() without
// a default (the Python binding raises KeyError).
class KeyNotFound : public Error {
public:
    using Error::Error;
};

struct SharedDictOptions {
    // Budget for keys, values and per-entry bookkeeping, in bytes (what stats().bytes counts); 0: no
    // budget, nothing is ever evicted.
    std::size_t max_bytes = 0;
};

struct SharedDictStats {
    std::uint64_t hits = 0;         // reads that found a live key (get, contains, pop, ...)
    std::uint64_t misses = 0;       // reads that found none, or an expired one
    std::uint64_t evictions = 0;    // entries dropped for the budget
    std::uint64_t expirations = 0;  // entries dropped because their time to live passed
    std::size_t entries = 0;        // stored now, expired ones not yet dropped included
    std::size_t bytes = 0;          // what the entries count against max_bytes
    std::size_t max_bytes = 0;
};

class SharedDict {
public:
    // Seconds; nullopt: the key never expires. Zero or negative: InvalidArgument.
    using Ttl = std::optional<std::chrono::duration<double>>;

    explicit SharedDict(SharedDictOptions options = {});
    // The process-wide store of that name, created on first use (with options, or the defaults) and
    // kept until the process ends, so workers that start later find what earlier ones stored. A later
    // call that gives options must give the same ones, or gets InvalidArgument naming the difference.
    static SharedDict named(const std::string& name, std::optional<SharedDictOptions> options = std::nullopt);

    // The value of key, or nullopt.
    std::optional<Value> get(const Value& key) const;
    bool contains(const Value& key) const;
    // Stores value under key (replacing any), expiring after ttl.
    void set(const Value& key, const Value& value, Ttl ttl = std::nullopt);
    // Stores value only if key is absent: true if it did (Django's cache.add, Redis's SET NX).
    bool add(const Value& key, const Value& value, Ttl ttl = std::nullopt);
    // The value stored under key if any; otherwise stores and returns dflt.
    Value setdefault(const Value& key, const Value& dflt, Ttl ttl = std::nullopt);
    // Removes key: true if it was there.
    bool erase(const Value& key);
    // Removes key and returns its value; KeyNotFound if absent.
    Value pop(const Value& key);
    // Adds delta to the int under key and returns the sum, keeping the key's time to live. An absent
    // key starts from initial, or is KeyNotFound without one; NotAnInteger for a value that is not
    // an int (bool included); InvalidArgument if the sum overflows 64 bits.
    std::int64_t incr(const Value& key, std::int64_t delta = 1, std::optional<std::int64_t> initial = std::nullopt);
    // Replaces the value under key with desired if it encodes the same as expected (for C++ values:
    // equal); expected nullopt means "absent". True if it did.
    bool compare_and_set(const Value& key, const std::optional<Value>& expected, const Value& desired,
                         Ttl ttl = std::nullopt);
    // Stores every pair at once: another thread sees all of them or none. Every key and value is
    // checked (and encoded) before anything changes, so a bad one leaves the store as it was.
    void update(const std::vector<std::pair<Value, Value>>& items, Ttl ttl = std::nullopt);
    // Gives key a new time to live (nullopt: none): false if absent.
    bool touch(const Value& key, Ttl ttl);
    // Removes every key.
    void clear();

    // Live keys now (drops the expired ones it meets).
    std::size_t size() const;
    // Snapshots of the live entries, in no particular order; each shard is read at one instant, the
    // whole store is not (use update() for changes that must be seen together).
    std::vector<Value> keys() const;
    std::vector<std::pair<Value, Value>> items() const;

    SharedDictStats stats() const;
    const SharedDictOptions& options() const noexcept;

    friend bool operator==(const SharedDict& a, const SharedDict& b) noexcept { return a.state_ == b.state_; }

private:
    friend struct detail::SharedDictAccess;  // the Python type's path: payloads, no Value
    struct State;
    explicit SharedDict(std::shared_ptr<State> state) noexcept : state_(std::move(state)) {}
    std::shared_ptr<State> state_;
};

}  // namespace manygil

// Last, not first: value.hpp includes this header (a Value may hold a SharedDict), and users of this
// one need Value complete to call it.
#include "manygil/value.hpp"  // IWYU pragma: export
