// manygil: Python on every core, in one process. Include this for the whole C++ API; no header
// needs Python.h.
//
// Reading the contracts: each header says, per member, what it does, whether it blocks and on what,
// whether it is thread-safe, which GIL it needs or must not hold, and lifetime rules. Rules shared by
// every blocking call (spin tuning with MANYGIL_SPIN_US, GILs across waits, interrupts) are stated
// once, in timeout.hpp. The one rule to remember: never hold the main interpreter's GIL while you
// wait for manygil workers (their creation and end, and run_in_main() jobs, take it).
#pragma once

#include "manygil/arrow_data.hpp"
#include "manygil/udf.hpp"
#include "manygil/errors.hpp"
#include "manygil/http.hpp"
#include "manygil/interpreter.hpp"
#include "manygil/job.hpp"
#include "manygil/main_call.hpp"
#include "manygil/pool.hpp"
#include "manygil/channel.hpp"
#include "manygil/runtime.hpp"
#include "manygil/task.hpp"
#include "manygil/shared_buffer.hpp"
#include "manygil/shared_dict.hpp"
#include "manygil/sync.hpp"
#include "manygil/timeout.hpp"
#include "manygil/value.hpp"
#include "manygil/wsgi.hpp"
