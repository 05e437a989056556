// _manygil_testing: a built-in module the C++ tests give every interpreter, so that tasks can meet
// each other and the test thread without timing assumptions.
//   rendezvous(name, parties, timeout) -> bool   waits HOLDING its GIL until `parties` callers arrived
//   set_event(name) / wait_event(name, timeout) -> bool   (waiting releases the GIL)
// _manygil_testing_legacy: a single-phase module, which isolated interpreters must refuse.
#pragma once

#include <string>

#include "manygil/runtime.hpp"

namespace manygil::testing {

// Runtime options for test binaries: the test helper modules on sys.path and the modules above.
RuntimeOptions runtime_options();

// The same events the module's functions use, for the test thread.
void set_event(const std::string& name);
bool wait_event(const std::string& name, double timeout_seconds);

}  // namespace manygil::testing
