#include "wsgi/environ.hpp"

#include <array>
#include <memory>

#include "cpython/interpreter_dict.hpp"
#include "cpython/python_error.hpp"

namespace manygil::wsgi {

using detail::PyRef;

namespace {

// The keys every environ has, in the order they are set.
enum Key : std::size_t {
    kMethod, kScriptName, kPathInfo, kQuery, kProtocol, kServerName, kServerPort, kRemoteAddr, kRemotePort,
    kRawUri, kContentType, kContentLength, kVersion, kScheme, kInput, kErrors, kMultithread, kMultiprocess,
    kRunOnce, kInputTerminated, kFileWrapper, kKeyCount
};
constexpr std::array<const char*, kKeyCount> kKeyNames = {
    "REQUEST_METHOD", "SCRIPT_NAME", "PATH_INFO", "QUERY_STRING", "SERVER_PROTOCOL", "SERVER_NAME", "SERVER_PORT",
    "REMOTE_ADDR", "REMOTE_PORT", "RAW_URI", "CONTENT_TYPE", "CONTENT_LENGTH", "wsgi.version", "wsgi.url_scheme",
    "wsgi.input", "wsgi.errors", "wsgi.multithread", "wsgi.multiprocess", "wsgi.run_once", "wsgi.input_terminated",
    "wsgi.file_wrapper"};

// Made once per interpreter, kept in its dict (a capsule), released with it.
struct Constants {
    std::array<PyRef, kKeyCount> keys;
    PyRef version, empty, http10, http11, errors, bytes_io, file_wrapper;
};

// wsgi.file_wrapper (PEP 3333's optional platform-specific file handling), defined in each interpreter
// from source so that C++ hosts need no manygil Python package. Over a regular file the worker sends
// the rest of the file with sendfile() instead of iterating it (wsgi_handler.cpp).
constexpr const char* kFileWrapperSource = R"(
class FileWrapper:
    """environ["wsgi.file_wrapper"]: a file-like object as the response body. Over a regular file
    the server sends the rest of the file, from its current position, with sendfile(); anything
    else is read in blocks of `blksize` bytes."""

    def __init__(self, filelike, blksize=8192):
        self.filelike = filelike
        self.blksize = blksize
        close = getattr(filelike, "close", None)
        if close is not None:
            self.close = close

    def __iter__(self):
        return self

    def __next__(self):
        data = self.filelike.read(self.blksize)
        if data:
            return bytes(data)
        raise StopIteration
)";

PyRef make_file_wrapper() {
    PyRef globals(PyDict_New());
    if (!globals || PyDict_SetItemString(globals.get(), "__name__", PyRef(PyUnicode_FromString("manygil.wsgi")).get()) < 0 ||
        PyDict_SetItemString(globals.get(), "__builtins__", PyEval_GetBuiltins()) < 0) {
        return PyRef();
    }
    PyRef done(PyRun_String(kFileWrapperSource, Py_file_input, globals.get(), globals.get()));
    if (!done) return PyRef();
    return PyRef::borrow(PyDict_GetItemString(globals.get(), "FileWrapper"));
}

void free_constants(PyObject* capsule) {
    delete static_cast<Constants*>(PyCapsule_GetPointer(capsule, "manygil.wsgi.constants"));
}

Constants& constants() {
    PyObject* capsule = detail::per_interpreter("manygil.wsgi.constants", []() -> PyObject* {
        auto c = std::make_unique<Constants>();
        for (std::size_t i = 0; i < kKeyCount; ++i) {
            c->keys[i] = PyRef(PyUnicode_InternFromString(kKeyNames[i]));
            if (!c->keys[i]) return nullptr;
        }
        c->version = PyRef(Py_BuildValue("(ii)", 1, 0));
        c->empty = PyRef(PyUnicode_FromString(""));
        c->http10 = PyRef(PyUnicode_InternFromString("HTTP/1.0"));
        c->http11 = PyRef(PyUnicode_InternFromString("HTTP/1.1"));
        PyRef sys(PyImport_ImportModule("sys"));
        c->errors = sys ? PyRef(PyObject_GetAttrString(sys.get(), "stderr")) : PyRef();
        PyRef io(PyImport_ImportModule("io"));
        c->bytes_io = io ? PyRef(PyObject_GetAttrString(io.get(), "BytesIO")) : PyRef();
        c->file_wrapper = make_file_wrapper();
        if (!c->version || !c->empty || !c->http10 || !c->http11 || !c->errors || !c->bytes_io || !c->file_wrapper) {
            return nullptr;
        }
        PyObject* capsule = PyCapsule_New(c.get(), "manygil.wsgi.constants", free_constants);
        if (capsule) c.release();
        return capsule;
    });
    return *static_cast<Constants*>(PyCapsule_GetPointer(capsule, "manygil.wsgi.constants"));
}

PyRef latin1(const std::string& s) { return PyRef(PyUnicode_DecodeLatin1(s.data(), static_cast<Py_ssize_t>(s.size()), nullptr)); }

int hex(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

void set(PyObject* environ, PyObject* key, PyRef value) {
    if (!value || PyDict_SetItem(environ, key, value.get()) < 0) detail::throw_python_error();
}

}  // namespace

void split_target(const std::string& target, std::string& path, std::string& query) {
    std::string_view t = target;
    // absolute-form ("http://host/path"): the path starts after the authority.
    if (auto scheme = t.find("://"); scheme != std::string_view::npos && t.front() != '/') {
        auto slash = t.find('/', scheme + 3);
        t = slash == std::string_view::npos ? std::string_view("/") : t.substr(slash);
    }
    auto q = t.find('?');
    std::string_view raw_path = t.substr(0, q);
    query = q == std::string_view::npos ? std::string() : std::string(t.substr(q + 1));
    path.clear();
    path.reserve(raw_path.size());
    for (std::size_t i = 0; i < raw_path.size(); ++i) {
        if (raw_path[i] == '%' && i + 2 < raw_path.size()) {
            int hi = hex(raw_path[i + 1]), lo = hex(raw_path[i + 2]);
            if (hi >= 0 && lo >= 0) {
                path.push_back(static_cast<char>(hi * 16 + lo));
                i += 2;
                continue;
            }
        }
        path.push_back(raw_path[i]);
    }
}

PyRef build_environ(const http::Request& r, const std::string& url_scheme) {
    Constants& c = constants();
    PyRef environ(PyDict_New());
    if (!environ) detail::throw_python_error();
    PyObject* e = environ.get();
    std::string path, query;
    split_target(r.target, path, query);

    set(e, c.keys[kMethod].get(), latin1(r.method));
    set(e, c.keys[kScriptName].get(), PyRef::borrow(c.empty.get()));
    set(e, c.keys[kPathInfo].get(), latin1(path));
    set(e, c.keys[kQuery].get(), latin1(query));
    set(e, c.keys[kProtocol].get(), PyRef::borrow(r.version_minor == 0 ? c.http10.get() : c.http11.get()));
    std::string server_name = r.server_addr;
    if (const http::Header* host = r.find("host"); host && !host->value.empty()) {
        server_name = host->value;
        if (server_name.front() == '[') server_name = server_name.substr(0, server_name.find(']') + 1);
        else server_name = server_name.substr(0, server_name.rfind(':'));
    }
    set(e, c.keys[kServerName].get(), latin1(server_name));
    set(e, c.keys[kServerPort].get(), latin1(std::to_string(r.server_port)));
    set(e, c.keys[kRemoteAddr].get(), latin1(r.remote_addr));
    set(e, c.keys[kRemotePort].get(), latin1(std::to_string(r.remote_port)));
    set(e, c.keys[kRawUri].get(), latin1(r.target));

    for (const http::Header& h : r.headers) {
        PyObject* key = nullptr;
        PyRef made;
        if (http::iequals(h.name, "content-type")) {
            key = c.keys[kContentType].get();
        } else if (http::iequals(h.name, "content-length")) {
            continue;  // set below from the body actually received
        } else {
            if (h.name.find('_') != std::string::npos) continue;  // could pass for a header with '-' (spoofing)
            std::string name = "HTTP_";
            name.reserve(5 + h.name.size());
            for (char ch : h.name) name.push_back(ch == '-' ? '_' : (ch >= 'a' && ch <= 'z' ? static_cast<char>(ch - 32) : ch));
            made = latin1(name);
            if (!made) detail::throw_python_error();
            key = made.get();
        }
        // Repeated headers are joined with ", " (RFC 9110), cookies with "; ".
        if (PyObject* before = PyDict_GetItemWithError(e, key)) {
            PyRef value = latin1(h.value);
            if (!value) detail::throw_python_error();
            set(e, key, PyRef(PyUnicode_FromFormat(http::iequals(h.name, "cookie") ? "%U; %U" : "%U, %U", before,
                                                   value.get())));
        } else {
            if (PyErr_Occurred()) detail::throw_python_error();
            set(e, key, latin1(h.value));
        }
    }
    if (!r.body.empty() || r.find("content-length")) set(e, c.keys[kContentLength].get(), latin1(std::to_string(r.body.size())));

    set(e, c.keys[kVersion].get(), PyRef::borrow(c.version.get()));
    set(e, c.keys[kScheme].get(), latin1(url_scheme));
    PyRef body(PyBytes_FromStringAndSize(r.body.data(), static_cast<Py_ssize_t>(r.body.size())));
    if (!body) detail::throw_python_error();
    set(e, c.keys[kInput].get(), PyRef(PyObject_CallOneArg(c.bytes_io.get(), body.get())));
    set(e, c.keys[kErrors].get(), PyRef::borrow(c.errors.get()));
    // Each worker's interpreter runs one request at a time; other workers run the application's
    // other instances, which share no Python state with this one (as separate processes would).
    set(e, c.keys[kMultithread].get(), PyRef::borrow(Py_False));
    set(e, c.keys[kMultiprocess].get(), PyRef::borrow(Py_True));
    set(e, c.keys[kRunOnce].get(), PyRef::borrow(Py_False));
    set(e, c.keys[kInputTerminated].get(), PyRef::borrow(Py_True));
    set(e, c.keys[kFileWrapper].get(), PyRef::borrow(c.file_wrapper.get()));
    return environ;
}

PyObject* file_wrapper_type() { return constants().file_wrapper.get(); }

}  // namespace manygil::wsgi
