#include "pytypes/crossing_types.hpp"

#include <optional>
#include <utility>

#include "codec/crossing.hpp"
#include "pytypes/channel_type.hpp"
#include "pytypes/shared_buffer_type.hpp"
#include "pytypes/shared_dict_type.hpp"
#include "pytypes/sync_types.hpp"

namespace manygil::detail {

namespace {

// The order is the encoder's: the likeliest first.
constexpr CrossingType kBuffer{
    Value::Kind::Buffer,
    [](PyObject* obj) -> std::optional<Value> {
        if (const SharedBuffer* buffer = unwrap_buffer(obj)) return Value(*buffer);
        return std::nullopt;
    },
    [](const Value& handle) { return wrap_buffer(handle.as_buffer()); },
};
constexpr CrossingType kChannel{
    Value::Kind::Channel,
    [](PyObject* obj) -> std::optional<Value> {
        if (const Channel* channel = unwrap_channel(obj)) return Value(*channel);
        return std::nullopt;
    },
    [](const Value& handle) { return wrap_channel(handle.as_channel()); },
};
constexpr CrossingType kSync{
    Value::Kind::Sync,
    [](PyObject* obj) -> std::optional<Value> {
        if (auto primitive = unwrap_sync(obj)) return Value(std::move(*primitive));
        return std::nullopt;
    },
    [](const Value& handle) { return wrap_sync(handle.as_sync()); },
};
constexpr CrossingType kSharedDict{
    Value::Kind::SharedDict,
    [](PyObject* obj) -> std::optional<Value> {
        if (const SharedDict* dict = unwrap_shared_dict(obj)) return Value(*dict);
        return std::nullopt;
    },
    [](const Value& handle) { return wrap_shared_dict(handle.as_shared_dict()); },
};

}  // namespace

void register_crossing_types() {
    register_crossing_type(kBuffer);
    register_crossing_type(kChannel);
    register_crossing_type(kSync);
    register_crossing_type(kSharedDict);
}

}  // namespace manygil::detail
