#include <gtest/gtest.h>

#include <memory>

#include "shared_runtime.hpp"
#include "testing_module.hpp"

namespace manygil::testing {

namespace {
std::unique_ptr<Runtime> g_runtime;

class RuntimeEnvironment : public ::testing::Environment {
public:
    void SetUp() override { g_runtime = std::make_unique<Runtime>(runtime_options()); }
    void TearDown() override { g_runtime.reset(); }
};
}  // namespace

Runtime& runtime() { return *g_runtime; }

}  // namespace manygil::testing

int main(int argc, char** argv) {
    ::testing::InitGoogleTest(&argc, argv);
    ::testing::AddGlobalTestEnvironment(new manygil::testing::RuntimeEnvironment);
    return RUN_ALL_TESTS();
}
