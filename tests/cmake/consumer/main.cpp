#include <manygil/manygil.hpp>

#include <cstdint>
#include <cstdio>

// A host-made Arrow column: three int64 values, no nulls, in static memory (nothing to free).
void no_release(ArrowArray* a) { a->release = nullptr; }
void no_release(ArrowSchema* s) { s->release = nullptr; }

int main() {
    manygil::Runtime runtime;
    manygil::Pool pool(runtime, {.workers = 2});
    manygil::Value v = pool.submit("json:loads", {"[1, 2.5, \"x\"]"}).get();
    std::printf("consumer got %s\n", v.repr().c_str());

    static const std::int64_t values[] = {-3, 4, -5};
    static const void* buffers[] = {nullptr, values};
    ArrowSchema schema{"l", "x", nullptr, 0, 0, nullptr, nullptr, no_release, nullptr};
    ArrowArray array{3, 0, 0, 2, 0, buffers, nullptr, nullptr, no_release, nullptr};
    manygil::arrow::ExportedArray out = manygil::udf::map_rows(pool, "builtins:abs", {{&schema, &array}}, "l");
    const auto* got = static_cast<const std::int64_t*>(out.array.buffers[1]);
    std::printf("consumer mapped abs: %lld %lld %lld\n", static_cast<long long>(got[0]),
                static_cast<long long>(got[1]), static_cast<long long>(got[2]));
    bool mapped = out.array.length == 3 && got[0] == 3 && got[1] == 4 && got[2] == 5;
    return v == manygil::Value::list({1, 2.5, "x"}) && mapped ? 0 : 1;
}
