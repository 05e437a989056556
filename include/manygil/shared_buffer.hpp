// manygil::SharedBuffer: a fixed-size block of memory owned by C++ and shared by reference between C++
// and every interpreter. Sending it (in a task's arguments, a result, a Channel message, a Value)
// never copies it: the receiver gets a new handle, or a new Python wrapper, over the same memory.
//
// Lifetime: a handle is a reference, like a shared_ptr. The block is freed when its last holder (a
// handle in C++, a Python wrapper or a memoryview of one in any interpreter, a queued message) lets
// go, whichever thread that is; its address and size never change, so data() stays valid while you
// hold a handle. Destroying a handle never blocks and needs no GIL. A moved-from handle may only be
// destroyed or assigned to.
//
// Thread safety and ordering: the members are thread-safe, but the BYTES are plain memory and the
// buffer gives no ordering and no locking. Writes by one thread or interpreter are visible to another
// only after a synchronising operation between them: a Channel message (send happens-before recv),
// an Event (set happens-before a wait that returns true), a Lock, Semaphore or Barrier, a task's
// submission and its result. Concurrent writes, or a write concurrent with a read, of the same bytes
// are a data race; split the buffer into disjoint parts instead.
#pragma once

#include <cstddef>
#include <memory>
#include <string_view>

namespace manygil {

class SharedBuffer {
public:
    // nbytes zero-filled bytes, 64-byte aligned (nbytes may be 0). Throws std::bad_alloc.
    explicit SharedBuffer(std::size_t nbytes);
    // A new block holding a copy of data.
    static SharedBuffer from_bytes(std::string_view data);

    // The first byte (never null, even for 0 bytes) and the size: fixed for the block's life.
    std::byte* data() const noexcept;
    std::size_t size() const noexcept;

    // True if both refer to the same memory.
    friend bool operator==(const SharedBuffer& a, const SharedBuffer& b) noexcept { return a.block_ == b.block_; }

    // Blocks alive in this process, across all interpreters (diagnostics and tests).
    static std::size_t live_blocks() noexcept;

private:
    struct Block;
    explicit SharedBuffer(std::shared_ptr<Block> block) : block_(std::move(block)) {}
    std::shared_ptr<Block> block_;
};

}  // namespace manygil
