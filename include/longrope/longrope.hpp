// longrope: header-only LongRoPE positional interpolation. MIT License.
#pragma once

/// \file longrope.hpp
/// Umbrella header: everything in longrope that needs only Eigen and the
/// standard library. Config I/O (JSON) is separate: <longrope/json.hpp>, which
/// needs nlohmann-json, and so does <longrope/export.hpp>.

#include "version.hpp"
#include "error.hpp"
#include "config.hpp"
#include "view.hpp"
#include "isa.hpp"
#include "frequencies.hpp"
#include "table.hpp"
#include "rerotate.hpp"
#include "rotate.hpp"
#include "owned_table.hpp"
#include "kv_switch.hpp"
#include "search.hpp"
#include "gguf.hpp"
