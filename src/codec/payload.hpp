// Payload: the one wire format of values between interpreters (task arguments and results, channel
// messages). A flat byte string, written straight from Python objects by one interpreter and read
// straight into Python objects by another, plus a side table of handles for what crosses by
// reference (SharedBuffer, Channel, sync primitives: C++ reference counts, not bytes).
//
// Layout: one tag byte per value, then its body. Lengths, counts and ints are LEB128 varints (ints
// zigzag-encoded), so typical records stay small: every byte written here is a byte another core
// has to fetch. Floats are 8 native-endian bytes (both ends are in the same process). Containers
// give their item count, then the items (a dict: key, value, key, value...). Nothing is aligned.
//
// The reader trusts nothing: every read is bounds-checked, counts are checked against the bytes
// left, nesting is limited, text is validated. Malformed input is a ConversionError, never a crash
// (a libFuzzer target holds it to that).
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <new>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "manygil/errors.hpp"
#include "manygil/value.hpp"

namespace manygil::detail {

enum class Tag : std::uint8_t {
    None = 0,
    False,
    True,
    Int,      // zigzag varint (64-bit)
    BigInt,   // size, signed hexadecimal digits ("0x1f", "-0x1f")
    Float,    // double
    Ascii,    // size, that many bytes < 0x80 (str)
    Str,      // size, UTF-8 (lone surrogates allowed, as Python's "surrogatepass")
    Bytes,    // size, octets
    Tuple,    // count, items
    List,     // count, items
    Dict,     // count, key/value pairs
    Pickled,  // size, a pickle (protocol 5), read back with pickle.loads
    Handle,   // varint index into Payload::handles
};
inline constexpr std::uint8_t kTagCount = static_cast<std::uint8_t>(Tag::Handle) + 1;

// A growable byte buffer: malloc'd, never zero-filled, moved rather than copied.
class ByteBuffer {
public:
    ByteBuffer() noexcept = default;
    explicit ByteBuffer(std::string_view bytes) { append(bytes.data(), bytes.size()); }
    ByteBuffer(ByteBuffer&& o) noexcept
        : data_(std::exchange(o.data_, nullptr)), size_(std::exchange(o.size_, 0)), cap_(std::exchange(o.cap_, 0)) {}
    ByteBuffer& operator=(ByteBuffer&& o) noexcept {
        if (this != &o) {
            std::free(data_);
            data_ = std::exchange(o.data_, nullptr);
            size_ = std::exchange(o.size_, 0);
            cap_ = std::exchange(o.cap_, 0);
        }
        return *this;
    }
    ~ByteBuffer() { std::free(data_); }

    const char* data() const noexcept { return data_; }
    std::size_t size() const noexcept { return size_; }
    bool empty() const noexcept { return size_ == 0; }
    std::string_view view() const noexcept { return {data_, size_}; }

    // Room for n more bytes at end(); commit(n) once written.
    char* reserve(std::size_t n) {
        if (cap_ - size_ < n) [[unlikely]] grow(n);
        return data_ + size_;
    }
    void commit(std::size_t n) noexcept { size_ += n; }
    void append(const void* p, std::size_t n) {
        if (n) std::memcpy(reserve(n), p, n);
        size_ += n;
    }
    void truncate(std::size_t n) noexcept { size_ = std::min(size_, n); }
    char* at(std::size_t pos) noexcept { return data_ + pos; }

private:
    void grow(std::size_t n) {
        std::size_t cap = std::max(size_ + n, cap_ * 2 + 256);
        void* p = std::realloc(data_, cap);
        if (!p) throw std::bad_alloc();
        data_ = static_cast<char*>(p);
        cap_ = cap;
    }

    char* data_ = nullptr;
    std::size_t size_ = 0, cap_ = 0;
};

struct Payload {
    ByteBuffer bytes;
    // Values of kind Buffer, Channel or Sync, referenced by Tag::Handle.
    std::vector<Value> handles;
};

// How deep containers may nest (this also catches self-containing lists on the way in).
inline constexpr int kMaxDepth = 200;

// Appends to a growing buffer. Every put reserves once, then copies.
class PayloadWriter {
public:
    static constexpr std::size_t kMaxVarint = 10;  // bytes of a 64-bit LEB128

    void tag(Tag t) {
        *buf_.reserve(1) = static_cast<char>(t);
        buf_.commit(1);
    }
    // Tag, then a count (items), an index (handles) or a size.
    void tagged_count(Tag t, std::uint64_t n) {
        char* p = buf_.reserve(1 + kMaxVarint);
        *p = static_cast<char>(t);
        buf_.commit(1 + put_varint(p + 1, n));
    }
    void tagged_int(std::int64_t v) {
        tagged_count(Tag::Int, (static_cast<std::uint64_t>(v) << 1) ^ static_cast<std::uint64_t>(v >> 63));
    }
    void tagged_float(double v) {
        char* p = buf_.reserve(9);
        *p = static_cast<char>(Tag::Float);
        std::memcpy(p + 1, &v, 8);
        buf_.commit(9);
    }
    // Tag, size, then the bytes.
    void tagged_bytes(Tag t, const void* data, std::size_t n) {
        char* p = buf_.reserve(1 + kMaxVarint + n);
        *p = static_cast<char>(t);
        std::size_t head = 1 + put_varint(p + 1, n);
        if (n) std::memcpy(p + head, data, n);
        buf_.commit(head + n);
    }
    // A container whose count is only known at its end: writes the tag and room for the count,
    // and returns where, for patch_count().
    std::size_t tagged_count_later(Tag t) {
        std::size_t pos = buf_.size();
        char* p = buf_.reserve(1 + kMaxVarint);
        *p = static_cast<char>(t);
        buf_.commit(1 + kMaxVarint);
        return pos;
    }
    // The count, as a varint padded to its full width (LEB128 allows that).
    void patch_count(std::size_t pos, std::uint64_t n) {
        char* p = buf_.at(pos + 1);
        for (std::size_t i = 0; i + 1 < kMaxVarint; ++i, n >>= 7) p[i] = static_cast<char>((n & 0x7f) | 0x80);
        p[kMaxVarint - 1] = static_cast<char>(n & 0x7f);
    }
    // Room for `n` more bytes up front (a container about to write its items), so that the items
    // do not grow the buffer one by one.
    void expect(std::size_t n) { buf_.reserve(n); }

    std::size_t size() const noexcept { return buf_.size(); }
    // Drops what was written after `pos` (an item that failed half-way).
    void truncate(std::size_t pos) noexcept { buf_.truncate(pos); }
    ByteBuffer take() noexcept { return std::move(buf_); }

private:
    static std::size_t put_varint(char* p, std::uint64_t v) noexcept {
        std::size_t n = 0;
        while (v >= 0x80) {
            p[n++] = static_cast<char>((v & 0x7f) | 0x80);
            v >>= 7;
        }
        p[n++] = static_cast<char>(v);
        return n;
    }

    ByteBuffer buf_;
};

// Reads a payload's bytes front to back; throws ConversionError("payload", ...) at the first thing
// that does not fit.
class PayloadReader {
public:
    explicit PayloadReader(const ByteBuffer& bytes) noexcept : PayloadReader(bytes.view()) {}
    explicit PayloadReader(std::string_view bytes) noexcept : p_(bytes.data()), end_(bytes.data() + bytes.size()) {}

    bool at_end() const noexcept { return p_ == end_; }
    // The next tag without consuming it (Tag::None at the end: the read that follows reports it).
    Tag peek_tag() const noexcept { return p_ < end_ ? static_cast<Tag>(*p_) : Tag::None; }
    Tag tag() {
        need(1);
        auto t = static_cast<std::uint8_t>(*p_++);
        if (t >= kTagCount) malformed("unknown tag " + std::to_string(t));
        return static_cast<Tag>(t);
    }
    [[gnu::always_inline]] std::uint64_t varint() {
        if (p_ < end_ && !(*p_ & 0x80)) [[likely]] return static_cast<std::uint8_t>(*p_++);  // one byte: most of them
        return long_varint();
    }
    std::int64_t int64() {
        std::uint64_t z = varint();
        return static_cast<std::int64_t>((z >> 1) ^ (~(z & 1) + 1));
    }
    double f64() {
        need(8);
        double v;
        std::memcpy(&v, p_, 8);
        p_ += 8;
        return v;
    }
    // A count of items that each take at least `min_item_bytes`: checked against the bytes left, so
    // a forged count cannot make the reader allocate more than the input could describe.
    std::size_t count(std::size_t min_item_bytes) {
        std::uint64_t n = varint();
        if (n > static_cast<std::uint64_t>(end_ - p_) / min_item_bytes) malformed("a count larger than the data");
        return static_cast<std::size_t>(n);
    }
    // A size, then that many bytes.
    std::string_view sized() {
        std::size_t n = count(1);
        std::string_view s(p_, n);
        p_ += n;
        return s;
    }

    [[noreturn]] static void malformed(const std::string& what) {
        throw ConversionError("payload", "", "malformed: " + what);
    }

private:
    [[gnu::noinline]] std::uint64_t long_varint() {
        std::uint64_t v = 0;
        for (int shift = 0; shift < 64; shift += 7) {
            need(1);
            auto b = static_cast<std::uint8_t>(*p_++);
            if (shift == 63 && b > 1) malformed("a varint over 64 bits");
            v |= static_cast<std::uint64_t>(b & 0x7f) << shift;
            if (!(b & 0x80)) return v;
        }
        malformed("a varint over 64 bits");
    }

    void need(std::size_t n) const {
        if (static_cast<std::size_t>(end_ - p_) < n) malformed("truncated");
    }

    const char* p_;
    const char* end_;
};

// True if every byte is < 0x80.
inline bool is_ascii(const char* s, std::size_t n) noexcept {
    std::size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        std::uint64_t w;
        std::memcpy(&w, s + i, 8);
        if (w & 0x8080808080808080ull) return false;
    }
    for (; i < n; ++i) {
        if (static_cast<unsigned char>(s[i]) & 0x80) return false;
    }
    return true;
}

// Value <-> Payload, for C++ hosts (no Python involved). encode() throws ConversionError for
// containers nested deeper than kMaxDepth; decode_value() for malformed payloads.
Payload encode(const Value& value);
Value decode_value(const Payload& payload);

}  // namespace manygil::detail
