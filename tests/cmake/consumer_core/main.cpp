// The runtime alone (manygil::core): no HTTP, no Arrow UDFs.
#include <manygil/pool.hpp>
#include <manygil/runtime.hpp>
#include <manygil/shared_buffer.hpp>

#include <cstdio>

int main() {
    manygil::Runtime runtime;
    manygil::Pool pool(runtime, {.workers = 2});
    manygil::Value v = pool.submit("json:loads", {"[1, 2.5, \"x\"]"}).get();
    std::printf("core consumer got %s\n", v.repr().c_str());
    // A shared object crosses to a worker as its Python type there (the codec's registry).
    manygil::SharedBuffer buf(8);
    manygil::Value n = pool.submit("builtins:len", {manygil::Value(buf)}).get();
    std::printf("core consumer buffer len %lld\n", static_cast<long long>(n.as_int()));
    return v == manygil::Value::list({1, 2.5, "x"}) && n.as_int() == 8 ? 0 : 1;
}
