#include "manygil/shared_buffer.hpp"

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <new>

namespace manygil {

namespace {
std::atomic<std::size_t> g_live_blocks{0};
constexpr std::size_t kAlignment = 64;  // a cache line; also enough for any SIMD a consumer may use
}  // namespace

struct SharedBuffer::Block {
    explicit Block(std::size_t n) : size(n) {
        // aligned_alloc needs a size that is a multiple of the alignment, and non-zero.
        if (n > PTRDIFF_MAX - kAlignment) throw std::bad_alloc();  // rounding up would overflow
        std::size_t rounded = (n + kAlignment - 1) / kAlignment * kAlignment;
        data = static_cast<std::byte*>(std::aligned_alloc(kAlignment, rounded ? rounded : kAlignment));
        if (!data) throw std::bad_alloc();
        std::memset(data, 0, n);
        ++g_live_blocks;
    }
    ~Block() {
        std::free(data);
        --g_live_blocks;
    }
    Block(const Block&) = delete;
    Block& operator=(const Block&) = delete;

    std::byte* data;
    std::size_t size;
};

SharedBuffer::SharedBuffer(std::size_t nbytes) : block_(std::make_shared<Block>(nbytes)) {}

SharedBuffer SharedBuffer::from_bytes(std::string_view bytes) {
    SharedBuffer buffer(bytes.size());
    if (!bytes.empty()) std::memcpy(buffer.data(), bytes.data(), bytes.size());
    return buffer;
}

std::byte* SharedBuffer::data() const noexcept { return block_->data; }
std::size_t SharedBuffer::size() const noexcept { return block_->size; }
std::size_t SharedBuffer::live_blocks() noexcept { return g_live_blocks.load(); }

}  // namespace manygil
