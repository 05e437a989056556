// A C++ host serving an ASGI application with manygil::http::Server and manygil::asgi::AsgiHandler on a
// Pool's own-GIL workers, a raw socket client checking the answers: no Python in the test's thread, the
// application in tests/cpp/python/mg_asgi.py. The ASGI loop is the Python package's manygil/_asgi.py,
// lent to the workers through the package hook "asgi.serve" (what `import manygil` does) by a
// built-in module, so the test needs only the source tree, not an installed package.
#include <gtest/gtest.h>

#include <Python.h>

#include <algorithm>
#include <chrono>
#include <optional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "cpython/interpreter_dict.hpp"
#include "loopback_client.hpp"
#include "manygil/asgi.hpp"
#include "manygil/manygil.hpp"
#include "testing_module.hpp"

namespace {

using namespace std::chrono_literals;

std::mutex g_mu;
std::vector<std::string> g_notes;  // (g_mu) what the application told the host

std::vector<std::string> notes() {
    std::lock_guard lock(g_mu);
    return g_notes;
}

// _mg_asgi_host.note(text): the application reports to the host.
PyObject* py_note(PyObject*, PyObject* arg) {
    const char* text = PyUnicode_AsUTF8(arg);
    if (!text) return nullptr;
    std::lock_guard lock(g_mu);
    g_notes.emplace_back(text);
    Py_RETURN_NONE;
}

// _mg_asgi_host.set_package_hooks(provider): as manygil/__init__.py's _core._set_package_hooks.
PyObject* py_set_package_hooks(PyObject*, PyObject* provider) {
    try {
        manygil::detail::set_package_hooks(provider);
    } catch (const std::exception& e) {
        if (!PyErr_Occurred()) PyErr_SetString(PyExc_RuntimeError, e.what());
        return nullptr;
    }
    Py_RETURN_NONE;
}

PyMethodDef g_methods[] = {
    {"note", py_note, METH_O, "note(text): tell the host"},
    {"set_package_hooks", py_set_package_hooks, METH_O, "set_package_hooks(provider)"},
    {nullptr, nullptr, 0, nullptr},
};

PyModuleDef_Slot g_slots[] = {
    {Py_mod_multiple_interpreters, Py_MOD_PER_INTERPRETER_GIL_SUPPORTED},
#ifdef Py_mod_gil
    {Py_mod_gil, Py_MOD_GIL_NOT_USED},
#endif
    {0, nullptr},
};

PyModuleDef g_module = {PyModuleDef_HEAD_INIT, "_mg_asgi_host", nullptr, 0, g_methods, g_slots, nullptr, nullptr, nullptr};

PyObject* init_host() { return PyModuleDef_Init(&g_module); }

// Each worker loads manygil/_asgi.py from the source tree (it needs only asyncio) and lends its
// serve() as the package hook "asgi.serve".
const char* kInitializer = R"(
import importlib.util, sys
import _mg_asgi_host
spec = importlib.util.spec_from_file_location("mg_asgi_loop", ASGI_LOOP)
loop_module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(loop_module)
def provider(name):
    kind, _, attr = name.partition(".")
    if kind != "asgi":
        raise LookupError(name)
    return getattr(loop_module, attr)
_mg_asgi_host.set_package_hooks(provider)
)";

manygil::RuntimeOptions options() {
    manygil::RuntimeOptions o = manygil::testing::runtime_options();
    o.builtin_modules.push_back({"_mg_asgi_host", init_host});
    return o;
}

std::string initializer() {
    return std::string("ASGI_LOOP = ") + "'" + MANYGIL_PYTHON_PACKAGE_DIR + "/_asgi.py'\n" + kInitializer;
}

struct Host {
    explicit Host(std::size_t workers = 2, std::size_t max_requests = 0,
                  std::chrono::duration<double> recycle_grace = std::chrono::seconds(30))
        : runtime(options()),
          pool(runtime, {.workers = workers, .initializer = manygil::Initializer::source(initializer())}),
          handler(pool, {.app = "mg_asgi:app",
                         .lifespan = manygil::asgi::Lifespan::On,
                         .max_requests = max_requests,
                         .recycle_grace = recycle_grace}) {
        if (auto failed = handler.wait_started()) ADD_FAILURE() << *failed;
        server.emplace(manygil::http::ServerOptions{.bind = {"127.0.0.1:0"}, .log = [](std::string_view) {}}, handler);
    }
    manygil::Runtime runtime;
    manygil::Pool pool;
    manygil::asgi::AsgiHandler handler;
    std::optional<manygil::http::Server> server;

    std::string address() { return server->addresses().at(0); }
};

using manygil::testing::round_trip;

std::size_t count(const std::vector<std::string>& v, const std::string& what) {
    return static_cast<std::size_t>(std::count(v.begin(), v.end(), what));
}

TEST(AsgiHandler, ServesAnAsgiApplicationFromACppHostAndStopsCleanly) {
    {
        Host host;
        EXPECT_EQ(count(notes(), "startup"), 2u);  // lifespan startup in each worker before serving
        std::string got = round_trip(host.address(), "GET /hello HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n");
        EXPECT_EQ(got.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << got;
        EXPECT_NE(got.find("\r\n\r\nhello from GET /hello"), std::string::npos) << got;
        got = round_trip(host.address(), "GET /nowhere HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n");
        EXPECT_EQ(got.rfind("HTTP/1.1 404 ", 0), 0u) << got;
        // A clean stop: the server finishes, then every loop runs lifespan shutdown and ends its job.
        host.server->stop(5s);
        host.handler.stop();
        EXPECT_EQ(count(notes(), "shutdown"), 2u);
        host.pool.shutdown(true);
        EXPECT_TRUE(host.pool.finished());
    }
    EXPECT_EQ(manygil::Runtime::current(), nullptr);
}

TEST(AsgiHandler, GivesTheApplicationAStreamedRequestBodyPieceByPiece) {
    Host host;
    int fd = manygil::testing::connect_to(host.address());
    manygil::testing::send_all(fd, "POST /pieces HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n"
                                   "Connection: close\r\n\r\n5\r\nfirst\r\n");
    // The application has the first piece (more_body True) before the rest is even sent.
    auto deadline = std::chrono::steady_clock::now() + 30s;
    while (count(notes(), "piece first") == 0 && std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(10ms);
    }
    ASSERT_EQ(count(notes(), "piece first"), 1u);
    manygil::testing::send_all(fd, "6\r\nsecond\r\n0\r\n\r\n");
    std::string got = manygil::testing::read_until_close(fd);
    close(fd);
    EXPECT_EQ(got.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << got;
    EXPECT_NE(got.find("Transfer-Encoding: chunked\r\n"), std::string::npos) << got;  // streamed back
    // The pieces in order, the last one (maybe empty) with more_body False.
    EXPECT_NE(got.find("[[\"first\", true], [\"second\", "), std::string::npos) << got;
    EXPECT_NE(got.find("false]]"), std::string::npos) << got;
}

TEST(AsgiHandler, RecyclesAWorkersLoopAfterMaxRequestsWithoutLosingOne) {
    Host host(1, 3);
    // One worker, a share of 3: each request on its own connection, all answered while the loop is
    // replaced by new interpreters (each with lifespan startup; the old ones shut down).
    for (int i = 0; i < 12; ++i) {
        std::string got = round_trip(host.address(), "GET /hello HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n");
        ASSERT_EQ(got.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << i << ": " << got;
        std::this_thread::sleep_for(20ms);  // room for a successor to start meanwhile
    }
    auto deadline = std::chrono::steady_clock::now() + 30s;
    while (host.pool.stats().recycled == 0 && std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(10ms);
    }
    EXPECT_GE(host.pool.stats().recycled, 1u);
    host.server->stop(5s);
    host.handler.stop();
    std::vector<std::string> n = notes();
    EXPECT_GE(count(n, "startup"), 2u);
    EXPECT_EQ(count(n, "startup"), count(n, "shutdown"));
}

// A raw WebSocket client's pieces: a masked frame out, a server frame (unmasked) in.
std::string masked_text(const std::string& payload) {
    std::string f;
    f += static_cast<char>(0x81);
    f += static_cast<char>(0x80 | payload.size());  // short payloads only
    const char key[4] = {1, 2, 3, 4};
    f.append(key, 4);
    for (std::size_t i = 0; i < payload.size(); ++i) f += static_cast<char>(payload[i] ^ key[i % 4]);
    return f;
}

bool read_exact(int fd, std::string& out, std::size_t n) {
    while (out.size() < n) {
        char buf[4096];
        ssize_t got = recv(fd, buf, std::min(sizeof buf, n - out.size()), 0);
        if (got <= 0) return false;
        out.append(buf, static_cast<std::size_t>(got));
    }
    return true;
}

struct Frame {
    int opcode = -1;
    std::string payload;
};

Frame read_frame(int fd) {
    std::string head;
    if (!read_exact(fd, head, 2)) return {};
    std::size_t len = static_cast<unsigned char>(head[1]) & 0x7f;
    if (len == 126) {
        std::string ext;
        if (!read_exact(fd, ext, 2)) return {};
        len = (static_cast<unsigned char>(ext[0]) << 8) | static_cast<unsigned char>(ext[1]);
    }
    Frame f{static_cast<unsigned char>(head[0]) & 0x0f, {}};
    if (!read_exact(fd, f.payload, len)) return {};
    return f;
}

TEST(AsgiHandler, ARecycledLoopClosesItsOpenWebSocketWith1001AfterTheGrace) {
    Host host(1, 2, std::chrono::milliseconds(300));
    int fd = manygil::testing::connect_to(host.address());
    manygil::testing::send_all(fd, "GET /ws HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                                   "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n");
    std::string head;
    while (head.find("\r\n\r\n") == std::string::npos) {
        char c;
        ASSERT_EQ(recv(fd, &c, 1, 0), 1) << head;
        head += c;
    }
    ASSERT_EQ(head.rfind("HTTP/1.1 101 ", 0), 0u) << head;
    manygil::testing::send_all(fd, masked_text("one"));
    Frame echo = read_frame(fd);
    EXPECT_EQ(echo.opcode, 1);
    EXPECT_EQ(echo.payload, "one");
    // Past the share (the WebSocket counted, then two requests): a new interpreter takes over ...
    for (int i = 0; i < 2; ++i) {
        std::string got = round_trip(host.address(), "GET /hello HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n");
        ASSERT_EQ(got.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << got;
    }
    // ... and the old loop, once the grace is over, closes the WebSocket it still holds with 1001
    // (its task cancelled), then runs lifespan shutdown.
    Frame close_frame = read_frame(fd);
    EXPECT_EQ(close_frame.opcode, 8);
    ASSERT_GE(close_frame.payload.size(), 2u);
    EXPECT_EQ((static_cast<unsigned char>(close_frame.payload[0]) << 8) | static_cast<unsigned char>(close_frame.payload[1]),
              1001);
    close(fd);
    auto deadline = std::chrono::steady_clock::now() + 30s;
    while (count(notes(), "shutdown") == 0 && std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(10ms);
    }
    EXPECT_EQ(count(notes(), "shutdown"), 1u);
    EXPECT_EQ(count(notes(), "startup"), 2u);
    EXPECT_EQ(count(notes(), "ws task ended"), 1u);
    // The new loop serves.
    std::string got = round_trip(host.address(), "GET /hello HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n");
    EXPECT_EQ(got.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << got;
}

}  // namespace
