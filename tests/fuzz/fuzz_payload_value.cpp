// libFuzzer target: the payload decoder on arbitrary bytes, with no interpreter. It must reject
// what is malformed with ConversionError (never crash, hang or leak), and what it accepts must
// survive encode -> decode unchanged.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "manygil/errors.hpp"
#include "codec/payload.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace manygil::detail;
    Payload payload{ByteBuffer(std::string_view(reinterpret_cast<const char*>(data), size)), {}};
    manygil::Value value;
    try {
        value = decode_value(payload);
    } catch (const manygil::ConversionError&) {
        return 0;  // refused: fine
    }
    Payload again = encode(value);
    if (!(decode_value(again) == value)) std::abort();  // the round trip changed a value
    return 0;
}
