// manygil::SharedDict from C++: the mapping, atomic read-modify-write under contention, the budget
// with CLOCK eviction, time to live, named stores. No Python: the store never needs an interpreter.
#include "manygil/shared_dict.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <limits>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "manygil/shared_buffer.hpp"

using manygil::SharedDict;
using manygil::Value;
using namespace std::chrono_literals;

TEST(SharedDict, IsAMapping) {
    SharedDict d;
    EXPECT_EQ(d.size(), 0u);
    EXPECT_FALSE(d.get("a").has_value());
    d.set("a", 1);
    d.set(Value::tuple({"t", 2}), Value::dict({{"k", Value::list({1.5, "x", manygil::None{}})}}));
    EXPECT_EQ(d.get("a")->as_int(), 1);
    EXPECT_EQ(*d.get(Value::tuple({"t", 2})), Value::dict({{"k", Value::list({1.5, "x", manygil::None{}})}}));
    EXPECT_TRUE(d.contains("a"));
    EXPECT_EQ(d.size(), 2u);
    d.set("a", "replaced");
    EXPECT_EQ(d.get("a")->as_str(), "replaced");
    EXPECT_FALSE(d.add("a", "not stored"));
    EXPECT_TRUE(d.add("b", 2));
    EXPECT_EQ(d.setdefault("b", 99).as_int(), 2);
    EXPECT_EQ(d.setdefault("c", 3).as_int(), 3);
    EXPECT_EQ(d.get("c")->as_int(), 3);
    EXPECT_EQ(d.pop("c").as_int(), 3);
    EXPECT_THROW(d.pop("c"), manygil::KeyNotFound);
    EXPECT_TRUE(d.erase("b"));
    EXPECT_FALSE(d.erase("b"));
    std::set<std::string> keys;
    for (const Value& k : d.keys()) keys.insert(k.repr());
    EXPECT_EQ(keys, (std::set<std::string>{"'a'", "('t', 2)"}));
    EXPECT_EQ(d.items().size(), 2u);
    d.clear();
    EXPECT_EQ(d.size(), 0u);
    EXPECT_EQ(d.stats().bytes, 0u);
}

TEST(SharedDict, KeysAreTheSameOnlyWhenTheyEncodeTheSame) {
    SharedDict d;
    d.set(1, "int");
    d.set(1.0, "float");
    d.set(true, "bool");
    EXPECT_EQ(d.size(), 3u);
    EXPECT_EQ(d.get(1)->as_str(), "int");
    EXPECT_EQ(d.get(true)->as_str(), "bool");
}

TEST(SharedDict, RefusesKeysPythonCannotHashAndPickledValues) {
    SharedDict d;
    EXPECT_THROW(d.set(Value::list({1}), 1), manygil::InvalidArgument);
    EXPECT_THROW(d.set(Value::tuple({Value::dict({})}), 1), manygil::InvalidArgument);
    EXPECT_THROW(d.set("k", manygil::Pickled{"\x80\x05N."}), manygil::InvalidArgument);
    EXPECT_THROW(d.set("k", 1, std::chrono::duration<double>(0)), manygil::InvalidArgument);
    EXPECT_EQ(d.size(), 0u);
}

TEST(SharedDict, SharedBuffersAreStoredByReference) {
    SharedDict d;
    manygil::SharedBuffer buf(16);
    d.set("buf", buf);
    std::optional<Value> got = d.get("buf");
    ASSERT_TRUE(got);
    EXPECT_TRUE(got->as_buffer() == buf);
}

TEST(SharedDict, IncrAddsToAnIntAndRefusesWhatIsNotOne) {
    SharedDict d;
    EXPECT_THROW(d.incr("n"), manygil::KeyNotFound);
    EXPECT_EQ(d.incr("n", 5, 10), 15);
    EXPECT_EQ(d.incr("n", -20), -5);
    d.set("s", "text");
    EXPECT_THROW(d.incr("s"), manygil::NotAnInteger);
    d.set("b", true);
    EXPECT_THROW(d.incr("b"), manygil::NotAnInteger);
    d.set("max", std::numeric_limits<std::int64_t>::max());
    EXPECT_THROW(d.incr("max"), manygil::InvalidArgument);
    EXPECT_EQ(d.get("max")->as_int(), std::numeric_limits<std::int64_t>::max());
}

TEST(SharedDict, NoUpdateIsLostUnderContention) {
    SharedDict d;
    constexpr int kThreads = 8, kRounds = 5000;
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
        threads.emplace_back([&, t] {
            for (int i = 0; i < kRounds; ++i) {
                d.incr("hot", 1, 0);
                d.incr(i % 7, 2, 0);
                // compare_and_set as a read-modify-write loop on another key
                for (;;) {
                    std::optional<Value> now = d.get("cas");
                    Value next = now ? Value(now->as_int() + 1) : Value(1);
                    if (d.compare_and_set("cas", now, next)) break;
                }
                if (t == 0 && i % 100 == 0) d.set(Value::tuple({"noise", i}), i);  // writers resize the shards
            }
        });
    }
    for (auto& th : threads) th.join();
    EXPECT_EQ(d.get("hot")->as_int(), kThreads * kRounds);
    EXPECT_EQ(d.get("cas")->as_int(), kThreads * kRounds);
    std::int64_t spread = 0;
    for (int k = 0; k < 7; ++k) spread += d.get(k)->as_int();
    EXPECT_EQ(spread, 2 * kThreads * kRounds);
}

TEST(SharedDict, ReadersSeeWholeValuesWhileWritersGrowTheStore) {
    SharedDict d;
    for (int k = 0; k < 100; ++k) d.set(k, Value::tuple({k, std::to_string(k)}));
    std::atomic<bool> stop{false};
    std::atomic<long> reads{0}, wrong{0};
    std::vector<std::thread> readers;
    for (int r = 0; r < 3; ++r) {
        readers.emplace_back([&] {
            while (!stop.load()) {
                for (int k = 0; k < 100; ++k) {
                    std::optional<Value> v = d.get(k);
                    if (!v || v->as_tuple()[0].as_int() != k || v->as_tuple()[1].as_str() != std::to_string(k)) ++wrong;
                    ++reads;
                }
            }
        });
    }
    for (int k = 100; k < 20000; ++k) d.set(k, Value::tuple({k, std::to_string(k)}));  // rehashes every shard
    for (int k = 0; k < 100; ++k) d.set(k, Value::tuple({k, std::to_string(k)}));      // rewrites, same values
    stop = true;
    for (auto& th : readers) th.join();
    EXPECT_GT(reads.load(), 0);
    EXPECT_EQ(wrong.load(), 0);
    EXPECT_EQ(d.size(), 20000u);
}

TEST(SharedDict, UpdateIsAllOrNothing) {
    SharedDict d;
    d.set("a", 0);
    std::vector<std::pair<Value, Value>> bad{{"a", 1}, {"b", 2}, {Value::list({}), 3}};
    EXPECT_THROW(d.update(bad), manygil::InvalidArgument);
    EXPECT_EQ(d.get("a")->as_int(), 0);
    EXPECT_FALSE(d.contains("b"));
    d.update({{"a", 1}, {"b", 2}});
    EXPECT_EQ(d.get("a")->as_int(), 1);
    EXPECT_EQ(d.get("b")->as_int(), 2);
}

TEST(SharedDict, KeysExpireAfterTheirTimeToLive) {
    SharedDict d;
    d.set("short", 1, 0.05s);
    d.set("long", 2, 3600s);
    d.set("kept", 3, 0.05s);
    EXPECT_TRUE(d.touch("kept", std::nullopt));  // no longer expires
    EXPECT_EQ(d.get("short")->as_int(), 1);
    std::this_thread::sleep_for(200ms);  // well past the 50 ms
    EXPECT_FALSE(d.get("short").has_value());
    EXPECT_FALSE(d.contains("short"));
    EXPECT_FALSE(d.touch("short", 10s));
    EXPECT_EQ(d.get("long")->as_int(), 2);
    EXPECT_EQ(d.get("kept")->as_int(), 3);
    EXPECT_EQ(d.size(), 2u);
    EXPECT_EQ(d.stats().expirations, 1u);
    // incr keeps a key's time to live; an expired key counts as absent
    d.set("counter", 1, 0.05s);
    EXPECT_EQ(d.incr("counter"), 2);
    std::this_thread::sleep_for(200ms);
    EXPECT_THROW(d.incr("counter"), manygil::KeyNotFound);
}

TEST(SharedDict, TheBudgetEvictsTheEntriesNotReadAndRefusesOversizedValues) {
    constexpr std::size_t kBudget = 256 * 1024;
    SharedDict d({.max_bytes = kBudget});
    std::string kilobyte(1024, 'x');
    for (int h = 0; h < 10; ++h) d.set(Value::tuple({"hot", h}), kilobyte);
    for (int k = 0; k < 2000; ++k) {
        d.set(k, kilobyte);
        for (int h = 0; h < 10; ++h) ASSERT_TRUE(d.get(Value::tuple({"hot", h})).has_value()) << "after " << k;
        ASSERT_LE(d.stats().bytes, kBudget);
    }
    manygil::SharedDictStats st = d.stats();
    EXPECT_GT(st.evictions, 1000u);
    EXPECT_LT(st.entries, 2010u);
    EXPECT_TRUE(d.get(1999).has_value());  // the newest is still there
    EXPECT_THROW(d.set("huge", std::string(kBudget, 'y')), manygil::InvalidArgument);
    EXPECT_FALSE(d.contains("huge"));
    EXPECT_EQ(d.stats().entries, st.entries);
}

TEST(SharedDict, StatsCountHitsAndMisses) {
    SharedDict d;
    d.set("a", 1);
    (void)d.get("a");
    (void)d.get("a");
    (void)d.get("missing");
    manygil::SharedDictStats st = d.stats();
    EXPECT_EQ(st.hits, 2u);
    EXPECT_EQ(st.misses, 1u);
    EXPECT_EQ(st.entries, 1u);
    EXPECT_GT(st.bytes, 0u);
}

TEST(SharedDict, NamedStoresAreOnePerNameForTheWholeProcess) {
    SharedDict a = SharedDict::named("shared_dict_test.cache", manygil::SharedDictOptions{.max_bytes = 1 << 20});
    SharedDict b = SharedDict::named("shared_dict_test.cache", manygil::SharedDictOptions{.max_bytes = 1 << 20});
    EXPECT_TRUE(a == b);
    a.set("k", "v");
    EXPECT_EQ(b.get("k")->as_str(), "v");
    EXPECT_FALSE(a == SharedDict::named("shared_dict_test.other"));
    EXPECT_THROW(SharedDict::named("shared_dict_test.cache", manygil::SharedDictOptions{.max_bytes = 5}),
                 manygil::InvalidArgument);
    EXPECT_TRUE(SharedDict::named("shared_dict_test.cache") == a);  // without options: whatever it has
}

TEST(SharedDict, ReadersNeverSeeAHalfWrittenValueOfAKeyBeingRewritten) {
    // Readers take no lock (a slot of their own, then the shard's writer flag): hammer the handshake
    // with writers rewriting the very keys being read, small values (copied) and large ones (shared).
    SharedDict d;
    auto value_of = [](int i) { return Value::tuple({i, std::string(static_cast<std::size_t>(i % 700), 'x')}); };
    for (int k = 0; k < 8; ++k) d.set(k, value_of(0));
    std::atomic<bool> stop{false};
    std::atomic<long> reads{0}, wrong{0};
    std::vector<std::thread> threads;
    for (int r = 0; r < 3; ++r) {
        threads.emplace_back([&] {
            while (!stop.load()) {
                for (int k = 0; k < 8; ++k) {
                    std::optional<Value> v = d.get(k);
                    const auto& t = v->as_tuple();
                    if (t[1].as_str().size() != static_cast<std::size_t>(t[0].as_int() % 700)) ++wrong;
                    ++reads;
                }
            }
        });
    }
    for (int w = 0; w < 2; ++w) {
        threads.emplace_back([&, w] {
            for (int i = 0; i < 20000; ++i) d.set((i + w) % 8, value_of(i));
        });
    }
    for (std::size_t i = 3; i < threads.size(); ++i) threads[i].join();
    stop = true;
    for (std::size_t i = 0; i < 3; ++i) threads[i].join();
    EXPECT_GT(reads.load(), 0);
    EXPECT_EQ(wrong.load(), 0);
    EXPECT_GE(d.stats().hits, static_cast<std::uint64_t>(reads.load()));
}

TEST(SharedDict, AValueHoldsItByReference) {
    SharedDict d;
    Value v = d;
    EXPECT_EQ(v.kind(), Value::Kind::SharedDict);
    EXPECT_EQ(std::string(v.type_name()), "SharedDict");
    EXPECT_TRUE(v.as_shared_dict() == d);
    SharedDict outer;
    outer.set("inner", v);
    std::optional<Value> got = outer.get("inner");
    ASSERT_TRUE(got);
    SharedDict inner = got->as_shared_dict();  // a handle: copies share the store
    inner.set("k", 1);
    EXPECT_EQ(d.get("k")->as_int(), 1);  // the same store
}
