// manygil::SharedBuffer: a block of memory owned by C++ and shared by reference between C++ and every
// interpreter. Sending it to a task (or through a Value) never copies it: the receiving interpreter
// gets a new wrapper over the same memory. The block is freed when its last holder, in any
// interpreter or in C++, lets go; its size never changes, so a view of it cannot dangle.
#pragma once

#include <cstddef>
#include <memory>
#include <string_view>

namespace manygil {

class SharedBuffer {
public:
    // nbytes zero-filled bytes (64-byte aligned).
    explicit SharedBuffer(std::size_t nbytes);
    static SharedBuffer from_bytes(std::string_view data);

    std::byte* data() const noexcept;
    std::size_t size() const noexcept;

    // True if both refer to the same memory.
    friend bool operator==(const SharedBuffer& a, const SharedBuffer& b) noexcept { return a.block_ == b.block_; }

    // Blocks alive in this process, across all interpreters (diagnostics and tests).
    static std::size_t live_blocks() noexcept;

    struct Block;

private:
    explicit SharedBuffer(std::shared_ptr<Block> block) : block_(std::move(block)) {}
    std::shared_ptr<Block> block_;
};

}  // namespace manygil
