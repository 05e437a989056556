#include <manygil/manygil.hpp>

#include <cstdio>

int main() {
    manygil::Runtime runtime;
    manygil::Pool pool(runtime, {.workers = 2});
    manygil::Value v = pool.submit("json:loads", {"[1, 2.5, \"x\"]"}).get();
    std::printf("consumer got %s\n", v.repr().c_str());
    return v == manygil::Value::list({1, 2.5, "x"}) ? 0 : 1;
}
