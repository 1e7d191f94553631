// `longrope search --method longrope2` (cmd_search_longrope2.cpp); cmd_search
// dispatches here when the arguments ask for LongRoPE2.
#pragma once
#include "commands.hpp"

namespace longrope_cli {

/// True iff the arguments hold "--method longrope2" (or "--method=longrope2").
bool is_longrope2_search(const args& a);
/// The LongRoPE2 search subcommand (see its --help).
int cmd_search_longrope2(const args& a);

}  // namespace longrope_cli
