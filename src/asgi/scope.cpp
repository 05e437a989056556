#include "asgi/scope.hpp"

#include <array>
#include <memory>
#include <string_view>

#include "cpython/interpreter_dict.hpp"
#include "cpython/python_error.hpp"
#include "wsgi/environ.hpp"

namespace manygil::asgi::detail {

using manygil::detail::PyRef;

namespace {

enum Key : std::size_t {
    kType, kAsgi, kHttpVersion, kMethod, kScheme, kPath, kRawPath, kQuery, kRootPath, kHeaders, kClient, kServer,
    kState, kSubprotocols, kExtensions, kKeyCount
};
constexpr std::array<const char*, kKeyCount> kKeyNames = {
    "type", "asgi", "http_version", "method", "scheme", "path", "raw_path", "query_string", "root_path", "headers",
    "client", "server", "state", "subprotocols", "extensions"};

// Made once per interpreter, kept in its dict (a capsule), released with it.
struct Constants {
    std::array<PyRef, kKeyCount> keys;
    PyRef http, v10, v11, get, post, asgi_version, spec_version, version_key, spec_key;
    PyRef websocket, ws_spec_version, ws_denial;
};

void free_constants(PyObject* capsule) {
    delete static_cast<Constants*>(PyCapsule_GetPointer(capsule, "manygil.asgi.scope"));
}

Constants& constants() {
    PyObject* capsule = manygil::detail::per_interpreter("manygil.asgi.scope", []() -> PyObject* {
        auto c = std::make_unique<Constants>();
        for (std::size_t i = 0; i < kKeyCount; ++i) {
            c->keys[i] = PyRef(PyUnicode_InternFromString(kKeyNames[i]));
            if (!c->keys[i]) return nullptr;
        }
        c->http = PyRef(PyUnicode_InternFromString("http"));
        c->v10 = PyRef(PyUnicode_InternFromString("1.0"));
        c->v11 = PyRef(PyUnicode_InternFromString("1.1"));
        c->get = PyRef(PyUnicode_InternFromString("GET"));
        c->post = PyRef(PyUnicode_InternFromString("POST"));
        c->asgi_version = PyRef(PyUnicode_InternFromString("3.0"));
        c->spec_version = PyRef(PyUnicode_InternFromString("2.3"));
        c->version_key = PyRef(PyUnicode_InternFromString("version"));
        c->spec_key = PyRef(PyUnicode_InternFromString("spec_version"));
        c->websocket = PyRef(PyUnicode_InternFromString("websocket"));
        c->ws_spec_version = PyRef(PyUnicode_InternFromString("2.4"));
        c->ws_denial = PyRef(PyUnicode_InternFromString("websocket.http.response"));
        if (!c->http || !c->v10 || !c->v11 || !c->get || !c->post || !c->asgi_version || !c->spec_version ||
            !c->version_key || !c->spec_key || !c->websocket || !c->ws_spec_version || !c->ws_denial) {
            return nullptr;
        }
        PyObject* capsule = PyCapsule_New(c.get(), "manygil.asgi.scope", free_constants);
        if (capsule) c.release();
        return capsule;
    });
    return *static_cast<Constants*>(PyCapsule_GetPointer(capsule, "manygil.asgi.scope"));
}

void set(PyObject* d, PyObject* key, PyRef value) {
    if (!value || PyDict_SetItem(d, key, value.get()) < 0) manygil::detail::throw_python_error();
}

PyRef bytes(std::string_view s) { return PyRef(PyBytes_FromStringAndSize(s.data(), static_cast<Py_ssize_t>(s.size()))); }
PyRef str(std::string_view s) { return PyRef(PyUnicode_DecodeLatin1(s.data(), static_cast<Py_ssize_t>(s.size()), nullptr)); }

// (host, port), or None for a Unix socket's (no address).
PyRef endpoint(const std::string& addr, std::uint16_t port) {
    if (addr.empty()) return PyRef::borrow(Py_None);
    return PyRef(Py_BuildValue("(NH)", PyUnicode_FromStringAndSize(addr.data(), static_cast<Py_ssize_t>(addr.size())),
                               port));
}

// The path part of a request-target, as received: "/a%20b" of "/a%20b?x=1" or "http://h/a%20b?x=1".
std::string_view raw_path_of(std::string_view t) {
    if (auto scheme = t.find("://"); scheme != std::string_view::npos && !t.empty() && t.front() != '/') {
        auto slash = t.find('/', scheme + 3);
        t = slash == std::string_view::npos ? std::string_view("/") : t.substr(slash);
    }
    return t.substr(0, t.find('?'));
}

bool iequals(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i) {
        char x = a[i], y = b[i];
        if (x >= 'A' && x <= 'Z') x = static_cast<char>(x + 32);
        if (y >= 'A' && y <= 'Z') y = static_cast<char>(y + 32);
        if (x != y) return false;
    }
    return true;
}

// Sec-WebSocket-Protocol's tokens, in order, over every such header: "chat, superchat" -> [chat, superchat].
PyRef subprotocols(const http::Request& r) {
    PyRef list(PyList_New(0));
    if (!list) return list;
    for (const http::Header& h : r.headers) {
        if (!iequals(h.name, "sec-websocket-protocol")) continue;
        std::string_view v = h.value;
        while (!v.empty()) {
            std::size_t comma = v.find(',');
            std::string_view token = v.substr(0, comma);
            v = comma == std::string_view::npos ? std::string_view() : v.substr(comma + 1);
            while (!token.empty() && (token.front() == ' ' || token.front() == '\t')) token.remove_prefix(1);
            while (!token.empty() && (token.back() == ' ' || token.back() == '\t')) token.remove_suffix(1);
            if (token.empty()) continue;
            PyRef item = str(token);
            if (!item || PyList_Append(list.get(), item.get()) < 0) return PyRef();
        }
    }
    return list;
}

}  // namespace

PyRef build_scope(const http::Request& r, const std::string& scheme, const std::string& root_path, PyObject* state,
                  bool websocket) {
    Constants& c = constants();
    PyRef scope(PyDict_New());
    if (!scope) manygil::detail::throw_python_error();
    PyObject* s = scope.get();
    std::string path, query;
    wsgi::split_target(r.target, path, query);
    std::string_view raw = raw_path_of(r.target);

    set(s, c.keys[kType].get(), PyRef::borrow(websocket ? c.websocket.get() : c.http.get()));
    PyRef asgi(PyDict_New());
    if (!asgi || PyDict_SetItem(asgi.get(), c.version_key.get(), c.asgi_version.get()) < 0 ||
        PyDict_SetItem(asgi.get(), c.spec_key.get(), websocket ? c.ws_spec_version.get() : c.spec_version.get()) < 0) {
        manygil::detail::throw_python_error();
    }
    set(s, c.keys[kAsgi].get(), std::move(asgi));
    set(s, c.keys[kHttpVersion].get(), PyRef::borrow(r.version_minor == 0 ? c.v10.get() : c.v11.get()));
    if (websocket) {
        // ws / wss for http / https (a trusted proxy's "https" included); another scheme as it is.
        set(s, c.keys[kScheme].get(), str(scheme == "https" ? "wss" : scheme == "http" ? "ws" : scheme));
        set(s, c.keys[kSubprotocols].get(), subprotocols(r));
        // The denial extension: websocket.http.response.start/body instead of accepting.
        PyRef ext(PyDict_New()), denial(PyDict_New());
        if (!ext || !denial || PyDict_SetItem(ext.get(), c.ws_denial.get(), denial.get()) < 0) {
            manygil::detail::throw_python_error();
        }
        set(s, c.keys[kExtensions].get(), std::move(ext));
    } else {
        set(s, c.keys[kMethod].get(), r.method == "GET"    ? PyRef::borrow(c.get.get())
                                      : r.method == "POST" ? PyRef::borrow(c.post.get())
                                                           : str(r.method));
        set(s, c.keys[kScheme].get(), str(scheme));
    }
    // The full path (root_path included), as uvicorn gives it since the spec said so.
    std::string full = root_path + path;
    set(s, c.keys[kPath].get(),
        PyRef(PyUnicode_DecodeUTF8(full.data(), static_cast<Py_ssize_t>(full.size()), "replace")));
    set(s, c.keys[kRawPath].get(), bytes(root_path + std::string(raw)));
    set(s, c.keys[kQuery].get(), bytes(query));
    set(s, c.keys[kRootPath].get(), str(root_path));
    PyRef headers(PyList_New(static_cast<Py_ssize_t>(r.headers.size())));
    if (!headers) manygil::detail::throw_python_error();
    std::string lower;
    for (std::size_t i = 0; i < r.headers.size(); ++i) {
        const http::Header& h = r.headers[i];
        lower.assign(h.name);
        for (char& ch : lower) {
            if (ch >= 'A' && ch <= 'Z') ch = static_cast<char>(ch + 32);
        }
        PyObject* pair = Py_BuildValue("(NN)", PyBytes_FromStringAndSize(lower.data(), static_cast<Py_ssize_t>(lower.size())),
                                       PyBytes_FromStringAndSize(h.value.data(), static_cast<Py_ssize_t>(h.value.size())));
        if (!pair) manygil::detail::throw_python_error();
        PyList_SET_ITEM(headers.get(), static_cast<Py_ssize_t>(i), pair);
    }
    set(s, c.keys[kHeaders].get(), std::move(headers));
    set(s, c.keys[kClient].get(), endpoint(r.remote_addr, r.remote_port));
    set(s, c.keys[kServer].get(), endpoint(r.server_addr, r.server_port));
    if (state && state != Py_None) set(s, c.keys[kState].get(), PyRef(PyDict_Copy(state)));
    return scope;
}

}  // namespace manygil::asgi::detail
