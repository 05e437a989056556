// manygil: Python on every core, in one process. Include this for the whole C++ API.
#pragma once

#include "manygil/errors.hpp"
#include "manygil/interpreter.hpp"
#include "manygil/job.hpp"
#include "manygil/pool.hpp"
#include "manygil/channel.hpp"
#include "manygil/runtime.hpp"
#include "manygil/shared_buffer.hpp"
#include "manygil/sync.hpp"
#include "manygil/value.hpp"
