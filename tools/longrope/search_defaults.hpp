// `longrope search`: the optimizer, budget and fitness split used when no
// tuning flag is given (chosen from the measurements in docs/search-quality.md),
// and the flags that override them.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>

#include <nlohmann/json.hpp>

#include <longrope/search.hpp>
#include <llama2c/validated_search.hpp>

#include "cli_args.hpp"

namespace longrope_cli {

/// The flags this header reads (added to cmd_search's option list).
inline const char* const kSearchTuningFlags[] = {"--optimizer", "--budget", "--validation-windows",
                                                 "--validation-patience"};

/// The defaults (docs/search-quality.md: the best combination measured). The
/// surrogate strategy, P 16, 8 children per generation, elite 8, 47
/// generations = 392 search evaluations (with at most one validation
/// evaluation per generation: <= 440 in all, a third of the paper EA's 1344):
/// at 4x on stories260K it reached the paper EA's full-budget held-out
/// quality in that budget (median of 5 seeds). `--optimizer evolution`
/// restores the paper's P 64, N1 = N2 = 16, k 32, T 40, no budget.
struct search_setup {
  longrope::search_strategy strategy = longrope::search_strategy::surrogate;
  int population = 16, mutations = 8, crossovers = 0, top_k = 8, iterations = 47;
  std::int64_t budget = 392;         ///< search evaluations (0: none, the T generations).
  std::int64_t validation_windows = 2;
  int validation_patience = 0;
};

inline search_setup default_search_setup() {
  search_setup s;
  return s;
}

/// Fills vo.extension.search's strategy, P, N1, N2, k, T, budget and vo's
/// validation settings: the defaults, then the flags given. Throws
/// std::invalid_argument on a bad flag.
inline void apply_search_setup(const option_parser& opt, llama2c::validated_options& vo,
                               std::int64_t& validation_windows) {
  const search_setup d = default_search_setup();
  auto& so = vo.extension.search;
  so.strategy = d.strategy;
  read_optimizer(opt, so.strategy);
  // Another optimizer than the default starts from the paper's P, N1, N2, k, T.
  const bool own = so.strategy == d.strategy;
  const generation_flags g =
      read_generation_flags(opt, own ? generation_flags{d.population, d.mutations, d.crossovers, d.top_k, d.iterations}
                                     : generation_flags{});
  so.population = g.population;
  so.mutations = g.mutations;
  so.crossovers = g.crossovers;
  so.top_k = g.top_k;
  so.iterations = g.iterations;
  const std::int64_t budget = opt.int_or("--budget", own ? d.budget : 0);
  if (budget < 0) throw std::invalid_argument("--budget: must be >= 0 (0: none)");
  so.max_evaluations = budget;
  validation_windows = opt.int_or("--validation-windows", d.validation_windows);
  if (validation_windows < 0 || validation_windows > 1000000) {
    throw std::invalid_argument("--validation-windows: must be in [0, 1000000]");
  }
  vo.validation_patience = opt.small_int("--validation-patience", d.validation_patience, 0);
}

/// The JSON block saying which optimizer and budget a search used.
inline nlohmann::json search_setup_json(const longrope::search_options& so) {
  return {{"strategy", longrope::to_string(so.strategy)},
          {"population", so.population},
          {"mutations", so.mutations},
          {"crossovers", so.crossovers},
          {"top_k", so.top_k},
          {"iterations", so.iterations},
          {"budget", so.max_evaluations}};
}

}  // namespace longrope_cli
