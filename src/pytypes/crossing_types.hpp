// The shared objects' Python types tell the codec how they cross (codec/crossing.hpp): SharedBuffer,
// Channel, the sync primitives and SharedDict register their wrap/unwrap hooks. Idempotent, any thread, no GIL
// needed. Called by manygil::Runtime's constructor (a C++ host's Value handles reach workers before
// any of these types exists) and whenever one of the types is created in an interpreter (a Python
// user's objects cross only after their type exists).
#pragma once

namespace manygil::detail {

void register_crossing_types();

}  // namespace manygil::detail
