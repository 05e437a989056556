// Arrow columns as manygil exchanges them with C++ hosts, DuckDB, pyarrow or polars: the Arrow C Data
// Interface's two structs (https://arrow.apache.org/docs/format/CDataInterface.html), declared as the
// spec asks every producer and consumer to declare them, so no Arrow library is needed; the guard
// lets a host that includes Arrow's own abi.h first keep its definition (the same layout). Plus an
// owner for an exported pair, and the error for arrays manygil cannot read.
//
// Threads: the structs are plain data. A release callback is called once, by whoever owns the
// struct then; the arrays manygil makes may be released from any thread.
#pragma once

#include <cstdint>
#include <stdexcept>

#ifndef ARROW_C_DATA_INTERFACE
#define ARROW_C_DATA_INTERFACE

#define ARROW_FLAG_DICTIONARY_ORDERED 1
#define ARROW_FLAG_NULLABLE 2
#define ARROW_FLAG_MAP_KEYS_SORTED 4

extern "C" {

struct ArrowSchema {
    // Array type description
    const char* format;
    const char* name;
    const char* metadata;
    int64_t flags;
    int64_t n_children;
    struct ArrowSchema** children;
    struct ArrowSchema* dictionary;

    // Release callback
    void (*release)(struct ArrowSchema*);
    // Opaque producer-specific data
    void* private_data;
};

struct ArrowArray {
    // Array data description
    int64_t length;
    int64_t null_count;
    int64_t offset;
    int64_t n_buffers;
    int64_t n_children;
    const void** buffers;
    struct ArrowArray** children;
    struct ArrowArray* dictionary;

    // Release callback
    void (*release)(struct ArrowArray*);
    // Opaque producer-specific data
    void* private_data;
};

}  // extern "C"

#endif  // ARROW_C_DATA_INTERFACE

namespace manygil::arrow {

// A malformed or unsupported array or schema (a nested or dictionary type, a format manygil does not
// read, buffers that do not match it); the message names the culprit, and the column when it has a
// name.
class ArrowError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// Both halves of an exported array, owned: move-only; the destructor releases whatever a consumer
// did not take (a consumer that takes one moves it out and sets the `release` it leaves behind to
// null, as the spec says). Destroy it where its producer's release may run (any thread for
// manygil's own arrays).
struct ExportedArray {
    ArrowSchema schema{};
    ArrowArray array{};

    ExportedArray() = default;
    ExportedArray(ExportedArray&& other) noexcept;
    ExportedArray& operator=(ExportedArray&& other) noexcept;
    ExportedArray(const ExportedArray&) = delete;
    ExportedArray& operator=(const ExportedArray&) = delete;
    ~ExportedArray();
};

}  // namespace manygil::arrow
