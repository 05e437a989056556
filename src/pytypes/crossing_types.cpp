#include "pytypes/crossing_types.hpp"

#include <optional>
#include <utility>
#include <vector>

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
    [](PyObject* obj, std::vector<Value>& handles) {
        const SharedBuffer* buffer = unwrap_buffer(obj);
        if (buffer) handles.emplace_back(*buffer);
        return buffer != nullptr;
    },
    [](const Value& handle) { return wrap_buffer(handle.as_buffer()); },
};
constexpr CrossingType kChannel{
    Value::Kind::Channel,
    [](PyObject* obj, std::vector<Value>& handles) {
        const Channel* channel = unwrap_channel(obj);
        if (channel) handles.emplace_back(*channel);
        return channel != nullptr;
    },
    [](const Value& handle) { return wrap_channel(handle.as_channel()); },
};
constexpr CrossingType kSync{
    Value::Kind::Sync,
    [](PyObject* obj, std::vector<Value>& handles) {
        std::optional<SyncPrimitive> primitive = unwrap_sync(obj);
        if (primitive) handles.emplace_back(std::move(*primitive));
        return primitive.has_value();
    },
    [](const Value& handle) { return wrap_sync(handle.as_sync()); },
};
constexpr CrossingType kSharedDict{
    Value::Kind::SharedDict,
    [](PyObject* obj, std::vector<Value>& handles) {
        const SharedDict* dict = unwrap_shared_dict(obj);
        if (dict) handles.emplace_back(*dict);
        return dict != nullptr;
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
