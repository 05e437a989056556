// libFuzzer target: the payload decoder building Python objects, in an embedded interpreter, on
// arbitrary bytes. Pickled items are refused here (pickle.loads runs arbitrary code by design;
// fuzzing it is fuzzing pickle). Malformed input must be a ConversionError, never a crash or leak.
#include <Python.h>

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "manygil/errors.hpp"
#include "codec/payload_python.hpp"
#include "cpython/python_error.hpp"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
    Py_InitializeEx(0);
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace manygil::detail;
    Payload payload{ByteBuffer(std::string_view(reinterpret_cast<const char*>(data), size)), {}};
    try {
        PyRef obj = decode_python(payload, /*allow_pickled=*/false);
        // What decodes must encode again (no pickler needed: only built-in types came out).
        Payload again = encode_python(obj.get());
        PyRef back = decode_python(again, false);
        int same = PyObject_RichCompareBool(obj.get(), back.get(), Py_EQ);
        if (same < 0) PyErr_Clear();  // NaN-free equality is not guaranteed (e.g. nan != nan)
    } catch (const manygil::ConversionError&) {
    } catch (const manygil::PythonError&) {  // e.g. MemoryError for a huge str: refused, not a crash
    }
    if (PyErr_Occurred()) PyErr_Clear();
    return 0;
}
