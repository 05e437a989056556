// SharedDict entries as payloads: what the Python type reads and writes, with no Value in between.
// SharedDict's Value members encode and decode the same payloads, so C++ and Python users of one
// store see the same entries.
//
// A key is the bytes of its payload (no handles: the caller checked it is a key, see
// shared_dict.hpp); a value is a payload, stored behind a shared_ptr so a reader takes a reference
// under the shard's lock and decodes after it. Every function here is thread-safe, takes no GIL and
// holds a shard's lock only while it finds or changes the entry.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "codec/payload.hpp"
#include "manygil/shared_dict.hpp"

namespace manygil::detail {

struct SharedDictAccess {
    using Stored = std::shared_ptr<const Payload>;
    using Ttl = SharedDict::Ttl;

    // A stored value and its version: every write of a key gives it a new version, so "unchanged
    // since I read it" is one comparison (compare_and_set from Python compares values with ==
    // outside the lock, then writes only if the version is still the one it read).
    struct Versioned {
        Stored value;               // nullptr: absent
        std::uint64_t version = 0;  // 0 when absent
    };

    // What get() found: a small value copied, a large one (or one holding shared objects) shared.
    struct Read {
        bool found = false;
        Stored shared;
        Payload copy;
        explicit operator bool() const noexcept { return found; }
        const Payload& payload() const noexcept { return shared ? *shared : copy; }
    };

    static Read get(const SharedDict& d, std::string_view key);
    static Versioned get_versioned(const SharedDict& d, std::string_view key);
    static bool contains(const SharedDict& d, std::string_view key);
    static void set(SharedDict& d, std::string key, Payload value, Ttl ttl);
    static bool add(SharedDict& d, std::string key, Payload value, Ttl ttl);
    // The value already stored, or nullptr after storing dflt.
    static Stored setdefault(SharedDict& d, std::string key, Payload dflt, Ttl ttl);
    // Writes value if key's version is still `version` (0: still absent): true if it did.
    static bool set_if_version(SharedDict& d, std::string key, Payload value, std::uint64_t version, Ttl ttl);
    static bool erase(SharedDict& d, std::string_view key);
    static Stored pop(SharedDict& d, std::string_view key);  // nullptr if absent
    static std::int64_t incr(SharedDict& d, std::string key, std::int64_t delta, std::optional<std::int64_t> initial);
    static void update(SharedDict& d, std::vector<std::pair<std::string, Payload>> items, Ttl ttl);
    static bool touch(SharedDict& d, std::string_view key, Ttl ttl);
    static std::vector<std::string> keys(const SharedDict& d);
    static std::vector<std::pair<std::string, Stored>> items(const SharedDict& d);
};

}  // namespace manygil::detail
