// The demo: the same CPU-bound pure-Python work on 1 worker and on N own-GIL workers, and the speedup.
//
//   manygil_speedup [--workers N] [--tasks T] [--fib K] [--rounds R]
//
// The machine may be shared and noisy: the two configurations are measured alternately, R rounds,
// and the best round of each is compared.
#include <algorithm>
#include <chrono>
#include <memory>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <future>
#include <vector>

#include "manygil/manygil.hpp"

namespace {

constexpr const char* kWork = R"(
def fib(n):
    return n if n < 2 else fib(n - 1) + fib(n - 2)
)";

// Seconds to run `tasks` calls of fib(k) on the pool.
double run(manygil::Pool& pool, int tasks, int k) {
    auto start = std::chrono::steady_clock::now();
    std::vector<manygil::Task> results;
    for (int i = 0; i < tasks; ++i) results.push_back(pool.submit("__main__:fib", {k}));
    for (auto& r : results) r.get();
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

int main(int argc, char** argv) {
    std::size_t workers = manygil::Pool::default_workers();
    int k = 28;
    int tasks = 0;
    int rounds = 5;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!std::strcmp(argv[i], "--workers")) workers = std::strtoul(argv[i + 1], nullptr, 10);
        else if (!std::strcmp(argv[i], "--tasks")) tasks = std::atoi(argv[i + 1]);
        else if (!std::strcmp(argv[i], "--fib")) k = std::atoi(argv[i + 1]);
        else if (!std::strcmp(argv[i], "--rounds")) rounds = std::atoi(argv[i + 1]);
        else {
            std::fprintf(stderr, "usage: %s [--workers N] [--tasks T] [--fib K] [--rounds R]\n", argv[0]);
            return 2;
        }
    }
    if (workers < 1) workers = 1;
    if (tasks < 1) tasks = static_cast<int>(6 * workers);
    if (rounds < 1) rounds = 1;

    try {
        manygil::Runtime runtime;
        std::printf("manygil demo: CPython %s, %d tasks of fib(%d) in pure Python\n",
                    manygil::Runtime::python_version().c_str(), tasks, k);
        auto make_pool = [&](std::size_t n) {
            auto pool = std::make_unique<manygil::Pool>(
                runtime, manygil::PoolOptions{.workers = n, .initializer = manygil::Initializer::source(kWork)});
            pool->wait_ready();
            return pool;
        };
        auto single = make_pool(1), multi = make_pool(workers);
        run(*single, 1, 20);  // warm up
        run(*multi, static_cast<int>(workers), 20);
        double one = 1e300, many = 1e300;
        for (int r = 0; r < rounds; ++r) {
            one = std::min(one, run(*single, tasks, k));
            many = std::min(many, run(*multi, tasks, k));
        }
        std::printf("  1 worker  : %7.3f s (best of %d)\n", one, rounds);
        std::printf("  %zu workers : %7.3f s (best of %d)\n", workers, many, rounds);
        std::printf("  speedup  : %.2fx on %zu own-GIL interpreters (ideal %zux)\n", one / many, workers, workers);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "manygil demo failed: %s\n", e.what());
        return 1;
    }
    return 0;
}
