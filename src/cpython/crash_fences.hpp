// Fences around CPython bugs that take down a process running own-GIL interpreters, reached by
// ordinary code (docs/cpython-bugs.md lists each bug, the versions it affects and its regression test).
// ThreadInterpreter applies them around every interpreter it creates, so C++ hosts and the Python
// package are covered alike.
#pragma once

#include <Python.h>

#include <string>

namespace manygil::detail {

// The main interpreter's GIL held, before a sub-interpreter is created. Idempotent and cheap once done
// (a sys.modules lookup and an identity check), so every interpreter creation calls it: no "first
// time" flag to race on while the GIL switches between creating threads.
//  - Imports _datetime (and, on 3.12, _decimal) in the main interpreter: initialised by a
//    sub-interpreter first, their process-wide state corrupts the heap later (gh-136421, gh-136423,
//    gh-117953).
//  - Replaces sys._current_frames/_current_exceptions by versions that see only this interpreter's
//    threads (CPython's walk every interpreter's threads and build frame objects for foreign frames
//    with the caller's allocator: an abort while other interpreters run Python).
// Never fails: a fence that cannot be set is skipped (no Python error is left set).
void fence_main_interpreter() noexcept;

// The main interpreter's GIL held, before a sub-interpreter is created: why creating one now would
// crash the process later, or an empty string when it would not. ThreadInterpreter refuses then:
//  - tracemalloc is tracing: its process-wide tables keep objects of interpreters that end, and the
//    process dies at exit (double free; gh-144172, gh-134604, gh-110029; 3.13.15 too);
//  - CPython 3.12.0 to 3.12.3: an ended sub-interpreter leaves dangling pointers in the argument
//    parser's static keyword tuples (gh-119213, fixed in 3.12.4).
std::string why_creation_is_unsafe();

// The new sub-interpreter attached, right after its creation: its sys._current_frames and
// sys._current_exceptions see only its own threads too.
void fence_sub_interpreter() noexcept;

}  // namespace manygil::detail
