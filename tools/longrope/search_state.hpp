// The state of a CLI search with external evaluators (`longrope search
// --evaluator/--mpi`, `longrope ask`, `longrope tell`): the search target from
// a transformers config.json and a context, the search itself, and the
// checkpoint file that holds both (a longrope.search_checkpoint plus a
// "longrope_cli" block, written atomically).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include <longrope/evaluator_protocol.hpp>
#include <longrope/search.hpp>

#include "cli_args.hpp"

namespace longrope_cli {

struct external_target {
  longrope::search_target target;  ///< geometry (head_dim, rotary_dim, base), L0, s
  double attention_factor = 1.0;   ///< sent with every request
};

/// The options `longrope search` (external), `longrope ask` take to start a search.
std::set<std::string> external_start_options();
std::set<std::string> external_start_flags();

/// Builds the target and a new search from --config/--context and the search
/// options (the same flags and defaults as the model search). Throws
/// std::invalid_argument / longrope::error naming the option.
longrope::evolutionary_search start_external_search(const option_parser& opt, external_target& target);

/// True when the command line gives any of the options that shape a new search.
bool gives_start_options(const option_parser& opt);

/// Atomic write (temporary file + rename) of the search state and the target.
void save_state(const std::string& path, const longrope::evolutionary_search& s, const external_target& t);
/// The same file from a checkpoint, with `extra`'s keys added at the top level
/// (the in-process `longrope search --model` adds "model_search"). One format
/// for every CLI search: a longrope.search_checkpoint plus "longrope_cli".
void save_state(const std::string& path, const longrope::search_checkpoint& cp, const external_target& t,
                const nlohmann::json& extra);
/// Reads a state file written by save_state. Throws longrope::error naming the
/// key; refuses a file with "model_search" (resumed by `search --model` only).
longrope::evolutionary_search load_state(const std::string& path, external_target& t);
/// Reads any state file: its checkpoint (validated as JSON, not yet as a
/// search), target, and the whole parsed file in `whole`.
longrope::search_checkpoint load_state(const std::string& path, external_target& t, nlohmann::json& whole);

/// The requests of s.ask(), ids s.checkpoint().evaluations + index (unique
/// across the whole search).
std::vector<longrope::eval_request> pending_requests(const longrope::evolutionary_search& s, const external_target& t);

/// The printed result: rescale_factors, n_hat, attention_factor, fitness,
/// evaluations, iterations, stop_reason, context, rope_scaling.
nlohmann::json result_json(const longrope::evolutionary_search& s, const external_target& t);

}  // namespace longrope_cli
