// manygil::Interpreter: isolation, own GIL, its own thread, errors, lifetime.
#include <gtest/gtest.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <future>
#include <iterator>
#include <set>

#include "manygil/manygil.hpp"
#include "shared_runtime.hpp"

using manygil::Interpreter;
using manygil::Value;
using manygil::testing::runtime;

TEST(Interpreter, ExecDefinesWhatCallUses) {
    Interpreter interp(runtime());
    interp.exec("def square(x):\n    return x * x\n");
    EXPECT_EQ(interp.call("__main__:square", {7}), Value(49));
}

TEST(Interpreter, StatePersistsBetweenCalls) {
    Interpreter interp(runtime());
    interp.exec("counter = 0\ndef bump():\n    global counter\n    counter += 1\n    return counter\n");
    EXPECT_EQ(interp.call("__main__:bump"), Value(1));
    EXPECT_EQ(interp.call("__main__:bump"), Value(2));
}

TEST(Interpreter, KeywordArgumentsAndQualifiedTargets) {
    Interpreter interp(runtime());
    EXPECT_EQ(interp.call("mg_tasks:add", {1}, {{"b", 2}, {"scale", 10}}), Value(30));
    EXPECT_EQ(interp.call("builtins:str.upper", {"abc"}), Value("ABC"));
}

TEST(Interpreter, InterpretersAreIsolated) {
    Interpreter a(runtime()), b(runtime());
    EXPECT_NE(a.id(), b.id());
    a.exec("shared = 'only in a'\nimport mg_tasks\nmg_tasks.marker = 1");
    b.exec("def probe():\n    import mg_tasks\n    return ['shared' in globals(), hasattr(mg_tasks, 'marker')]");
    EXPECT_EQ(b.call("__main__:probe"), Value::list({false, false}));
}

TEST(Interpreter, OwnsItsGilAndIsIsolatedByConfig) {
    if (manygil::Runtime::python_version() < "3.13") GTEST_SKIP() << "_interpreters.get_config needs 3.13";
    Interpreter interp(runtime());
    Value config = interp.call("mg_tasks:interpreter_config");
    auto get = [&](const char* key) {
        for (const auto& [k, v] : config.as_dict()) {
            if (k.as_str() == key) return v;
        }
        ADD_FAILURE() << "config has no " << key << ": " << config.repr();
        return Value();
    };
    EXPECT_EQ(get("gil"), Value("own"));
    EXPECT_EQ(get("use_main_obmalloc"), Value(false));
    EXPECT_EQ(get("check_multi_interp_extensions"), Value(true));
    EXPECT_EQ(get("allow_fork"), Value(false));
    EXPECT_EQ(get("allow_exec"), Value(false));
    EXPECT_EQ(get("allow_threads"), Value(true));
    EXPECT_EQ(get("allow_daemon_threads"), Value(true));  // stopped when the interpreter ends
}

TEST(Interpreter, RefusesSinglePhaseExtensionsButLoadsIsolatedOnes) {
    Interpreter interp(runtime());
    EXPECT_EQ(interp.call("mg_tasks:import_module", {"_manygil_testing"}), Value(true));
    if (manygil::Runtime::python_version() < "3.13") {
        GTEST_SKIP() << "CPython 3.12 checks only file-based extensions, not built-in ones like this test's";
    }
    try {
        interp.call("mg_tasks:import_module", {"_manygil_testing_legacy"});
        FAIL() << "a single-phase module loaded in an isolated interpreter";
    } catch (const manygil::PythonError& e) {
        EXPECT_EQ(e.type_name(), "ImportError");
        EXPECT_NE(e.message().find("_manygil_testing_legacy"), std::string::npos) << e.message();
        EXPECT_NE(e.message().find("does not support loading in subinterpreters"), std::string::npos) << e.message();
    }
}

TEST(Interpreter, RunsOnOneThreadOfItsOwn) {
    Interpreter interp(runtime());
    Value first = interp.call("mg_tasks:native_thread_id");
    EXPECT_NE(first.as_int(), static_cast<std::int64_t>(syscall(SYS_gettid)));
    for (int i = 0; i < 5; ++i) EXPECT_EQ(interp.call("mg_tasks:native_thread_id"), first);
}

TEST(Interpreter, ExceptionCarriesTypeMessageAndTraceback) {
    Interpreter interp(runtime());
    try {
        interp.call("mg_tasks:fail", {"boom"});
        FAIL() << "no exception";
    } catch (const manygil::PythonError& e) {
        EXPECT_EQ(e.type_name(), "ValueError");
        EXPECT_EQ(e.message(), "boom");
        EXPECT_STREQ(e.what(), "ValueError: boom");
        EXPECT_NE(e.traceback().find("Traceback (most recent call last)"), std::string::npos) << e.traceback();
        EXPECT_NE(e.traceback().find("mg_tasks.py"), std::string::npos) << e.traceback();
        EXPECT_NE(e.traceback().find("in fail"), std::string::npos) << e.traceback();
        EXPECT_NE(e.traceback().find("ValueError: boom"), std::string::npos) << e.traceback();
    }
    try {
        interp.call("mg_tasks:fail_nested", {3});
        FAIL() << "no exception";
    } catch (const manygil::PythonError& e) {
        EXPECT_EQ(e.type_name(), "KeyError");
        EXPECT_EQ(e.message(), "3");
        EXPECT_NE(e.traceback().find("in fail_nested"), std::string::npos) << e.traceback();
        EXPECT_NE(e.traceback().find("in _inner"), std::string::npos) << e.traceback();
    }
    try {
        interp.call("mg_tasks:fail_custom");
        FAIL() << "no exception";
    } catch (const manygil::PythonError& e) {
        EXPECT_EQ(e.type_name(), "mg_tasks.Custom");
        EXPECT_EQ(e.message(), "custom failure");
    }
}

TEST(Interpreter, ExecReportsSyntaxErrors) {
    Interpreter interp(runtime());
    try {
        interp.exec("def broken(:\n");
        FAIL() << "no exception";
    } catch (const manygil::PythonError& e) {
        EXPECT_EQ(e.type_name(), "SyntaxError");
        EXPECT_NE(e.traceback().find("<manygil exec>"), std::string::npos) << e.traceback();
    }
    EXPECT_EQ(interp.call("mg_tasks:add", {1, 1}), Value(2));
}

TEST(Interpreter, UnknownTargetsAreTypedAndNamed) {
    Interpreter interp(runtime());
    try {
        interp.call("no_such_module_xyz:f");
        FAIL() << "no exception";
    } catch (const manygil::UnknownFunctionError& e) {
        EXPECT_EQ(e.target(), "no_such_module_xyz:f");
        EXPECT_NE(e.reason().find("No module named 'no_such_module_xyz'"), std::string::npos) << e.reason();
    }
    try {
        interp.call("mg_tasks:nope");
        FAIL() << "no exception";
    } catch (const manygil::UnknownFunctionError& e) {
        EXPECT_NE(e.reason().find("has no attribute 'nope'"), std::string::npos) << e.reason();
    }
    try {
        interp.call("mg_tasks:sys");
        FAIL() << "no exception";
    } catch (const manygil::UnknownFunctionError& e) {
        EXPECT_EQ(e.reason(), "'module' object is not callable");
    }
    for (const char* bad : {"mg_tasks", ":f", "m:", "a:b:c", ""}) {
        EXPECT_THROW(interp.call(bad), manygil::InvalidArgument) << bad;
    }
}

TEST(Interpreter, SystemExitIsAnErrorNotAnExit) {
    Interpreter interp(runtime());
    try {
        interp.call("mg_tasks:exit_now", {3});
        FAIL() << "no exception";
    } catch (const manygil::PythonError& e) {
        EXPECT_EQ(e.type_name(), "SystemExit");
        EXPECT_EQ(e.message(), "3");
    }
    EXPECT_EQ(interp.call("mg_tasks:add", {2, 2}), Value(4));
}

TEST(Interpreter, CloseEndsItAndLaterUseThrows) {
    Interpreter interp(runtime());
    EXPECT_FALSE(interp.closed());
    interp.close();
    EXPECT_TRUE(interp.closed());
    EXPECT_THROW(interp.exec("x = 1"), manygil::ShutdownError);
    EXPECT_THROW(interp.call("mg_tasks:add", {1}), manygil::ShutdownError);
    interp.close();  // idempotent
}

TEST(Interpreter, EndingJoinsItsPythonThreads) {
    Interpreter interp(runtime());
    EXPECT_EQ(interp.call("mg_tasks:spawn_thread_and_return"), Value(true));
    interp.close();  // would abort with "not the last thread" if the thread were not joined
    EXPECT_TRUE(interp.closed());
}

TEST(Interpreter, EndingStopsItsDaemonThreadsWithSystemExit) {
    std::string marker = ::testing::TempDir() + "/manygil_daemon_" + std::to_string(::getpid());
    std::remove(marker.c_str());
    {
        Interpreter interp(runtime());
        EXPECT_EQ(interp.call("mg_tasks:start_daemon_thread", {marker}), Value(true));
        interp.close();  // would abort with "not the last thread" if the daemon thread were still there
    }
    std::ifstream in(marker);
    std::string seen((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    EXPECT_EQ(seen, "SystemExit");
    std::remove(marker.c_str());
}

TEST(Interpreter, TwoHundredCreateCloseCycles) {
    std::set<std::int64_t> ids;
    for (int i = 0; i < 200; ++i) {
        Interpreter interp(runtime());
        ASSERT_EQ(interp.call("mg_tasks:add", {i, 1}), Value(i + 1));
        ids.insert(interp.id());
    }
    EXPECT_EQ(ids.size(), 200u);
}

TEST(Interpreter, MovedInterpreterKeepsWorking) {
    Interpreter a(runtime());
    std::int64_t id = a.id();
    Interpreter b = std::move(a);
    EXPECT_EQ(b.id(), id);
    EXPECT_EQ(b.call("mg_tasks:add", {1, 2}), Value(3));
    EXPECT_TRUE(a.closed());  // NOLINT(bugprone-use-after-move): moved-from reports closed
}

TEST(Interpreter, SubmitQueuesInOrder) {
    Interpreter interp(runtime());
    interp.exec("log = []\ndef note(x):\n    log.append(x)\n    return list(log)");
    std::vector<std::future<Value>> futures;
    for (int i = 0; i < 5; ++i) futures.push_back(interp.submit("__main__:note", {i}));
    EXPECT_EQ(futures.back().get(), Value::list({0, 1, 2, 3, 4}));
}

namespace {
// A custom job that tries a blocking call on the interpreter it runs in.
class ReentrantCallJob : public manygil::Job {
public:
    ReentrantCallJob(Interpreter& interp, std::promise<std::string>& out) : interp_(interp), out_(out) {}
    void run() noexcept override {
        try {
            interp_.call("mg_tasks:add", {1});
            out_.set_value("no error");
        } catch (const manygil::Error& e) {
            out_.set_value(e.what());
        }
    }
    void abandon(std::exception_ptr) noexcept override { out_.set_value("abandoned"); }

private:
    Interpreter& interp_;
    std::promise<std::string>& out_;
};
}  // namespace

TEST(Interpreter, BlockingCallFromItsOwnThreadIsRefused) {
    Interpreter interp(runtime());
    std::promise<std::string> out;
    auto result = out.get_future();
    interp.post(std::make_unique<ReentrantCallJob>(interp, out));
    EXPECT_NE(result.get().find("would wait for itself"), std::string::npos);
    EXPECT_EQ(interp.call("mg_tasks:add", {1, 1}), Value(2));
}
