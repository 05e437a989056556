// IdleWorkers: worker threads whose pool has shut down, each still owning its own-GIL interpreter,
// parked until a new pool adopts them. Creating an interpreter costs a worker ~5-8 ms (and ending one
// ~1 ms); a pool started on parked workers starts in well under a millisecond.
//
// Who owns what: a parked thread keeps its ThreadInterpreter on its own stack, as every worker does;
// nothing here touches an interpreter. The process-wide list only holds each parked thread's Slot,
// through which a pool hands it an assignment or drain() tells it to end its interpreter.
//
// What a reused interpreter keeps from its last pool: imported modules and their state, the caches
// of resolved functions. What it does not: the pool's thread names, sys.path and initializer (the new
// pool's setup runs again), a pending interrupt. Only a worker that ended cleanly parks: its pool not
// broken, and no other thread alive in its interpreter (WorkerGroup decides).
//
// Threads: every member may be called from any thread, without any GIL. drain() blocks until the
// parked threads have ended their interpreters, which needs the main interpreter's GIL (each drops
// its thread state there): never call it holding that GIL.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace manygil::detail {

class WorkerGroup;

class IdleWorkers {
public:
    // A worker's next pool: the group and the worker's index in it.
    struct Assignment {
        std::shared_ptr<WorkerGroup> group;
        std::size_t index = 0;
    };

    // One parked thread's mailbox.
    struct Slot {
        std::thread::id thread;
        Assignment next;        // set by adopt()
        bool assigned = false;  // next is valid
        bool end = false;       // drain(): end the interpreter instead
    };

    static IdleWorkers& instance();

    // Offers the calling worker thread (its pool done with it) to the list. Returns its Slot, or null
    // when the list is full or draining: the caller then ends its interpreter.
    std::shared_ptr<Slot> offer();
    // Blocks the parked thread until a pool adopts it (returns its assignment) or drain() or the
    // limit asks it to end (returns an Assignment without a group).
    Assignment wait(const std::shared_ptr<Slot>& slot);
    // Called by the thread after it ended its interpreter because wait() said so.
    void ended();

    // Takes up to `wanted` parked workers for `group`, giving them the indices first, first + 1, ...;
    // returns their thread ids (their number is how many were taken).
    std::vector<std::thread::id> adopt(const std::shared_ptr<WorkerGroup>& group, std::size_t first,
                                       std::size_t wanted);

    // Tells every parked thread to end its interpreter and waits until they have. Later offers are
    // refused until resume(). Blocks; call without the main GIL.
    void drain();
    // Accepts offers again (after a drain before fork()).
    void resume();
    // In a forked child: the parked threads stayed in the parent; forget them (never touched here).
    void forget_after_fork() noexcept;

    // How many threads park at most (default: the usable CPUs; 0 disables parking). Lowering it
    // ends the surplus at once (without waiting for them).
    void set_limit(std::size_t limit);
    std::size_t limit() const;
    std::size_t parked() const;

private:
    IdleWorkers();

    mutable std::mutex mu_;
    std::condition_variable cv_;        // a slot got news (its thread waits on it)
    std::condition_variable ended_cv_;  // a drained thread ended its interpreter
    std::vector<std::shared_ptr<Slot>> parked_;
    std::size_t ending_ = 0;  // told to end, not yet ended
    std::size_t limit_;
    bool draining_ = false;
};

}  // namespace manygil::detail
