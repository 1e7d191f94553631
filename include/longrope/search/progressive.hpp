// longrope: header-only LongRoPE positional interpolation. MIT License.
#pragma once

/// \file search/progressive.hpp
/// Progressive extension (the paper's 8x -> 128x -> 2048x): stages at growing
/// scales, a callback between stages (fine-tuning in the paper), a
/// short-window stage for short_factor, and the resulting factors.
/// Part of <longrope/search.hpp>.

#include <algorithm>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "driver.hpp"

namespace longrope {

// ===========================================================================
// Progressive extension

/// The final LongRoPE factors: what transformers' rope_scaling needs, plus n_hat.
struct longrope_factors {
  std::vector<double> long_factor;          ///< totals relative to the original RoPE.
  std::vector<double> short_factor;         ///< for sequences <= L0 (all 1 when no short stage ran).
  std::int64_t original_max_position = 0;   ///< L0.
  std::int64_t max_position = 0;            ///< the longest target length searched.
  std::int64_t n_hat = 0;                   ///< the long search's start-token cutoff.

  /// A longrope rope_config on `geometry`'s head_dim / rotary_dim / base /
  /// layout (max_position_embeddings = max_position, n_hat set). Validated.
  rope_config to_rope_config(const rope_config& geometry) const;
};

/// One stage of a progressive search.
struct search_stage {
  std::string name;
  search_target target;                      ///< scale s of this stage (1 for a short-window stage at L0).
  search_space_config space;                 ///< e.g. default_space_config(target), lower lambda_max for short.
  search_options options;
  search_seeds seeds;                        ///< baselines and fixed seeds of this stage.
  bool seed_from_previous = true;            ///< add the previous stage's best (factors and n_hat) as a user seed.
  bool short_window = false;                 ///< the result is short_factor, not long_factor.
};

/// Scores a batch for one stage (stage index, the stage, the points).
using stage_fitness = std::function<std::vector<double>(std::size_t, const search_stage&, const std::vector<search_point>&)>;
/// Called after each stage but the last, e.g. to fine-tune the model with the stage's factors.
using stage_callback = std::function<void(std::size_t, const search_stage&, const search_result&)>;

/// The outcome of run_progressive.
struct progressive_result {
  std::vector<search_result> stages;
  longrope_factors factors;
};

/// Runs the stages in order: each stage's search (seeded from the previous
/// stage's best when seed_from_previous), then between(i, stage, result).
/// long_factor / n_hat come from the last non-short stage, short_factor from
/// the last short_window stage (ones if none); max_position is the largest
/// target length among long stages. All stages must share pairs() and L0.
/// Throws longrope::error ("longrope.search") on an empty or inconsistent stage list.
progressive_result run_progressive(const std::vector<search_stage>& stages, const stage_fitness& fitness,
                                   const stage_callback& between = {}, const progress_callback& progress = {});


// ---------------------------------------------------------------------------
// Implementation

inline rope_config longrope_factors::to_rope_config(const rope_config& geometry) const {
  rope_config c;
  c.head_dim = geometry.head_dim;
  c.rotary_dim = geometry.rotary_dim;
  c.base = geometry.base;
  c.layout = geometry.layout;
  c.type = rope_type::longrope;
  c.max_position_embeddings = max_position;
  c.longrope.long_factor = long_factor;
  c.longrope.short_factor = short_factor;
  c.longrope.original_max_position = original_max_position;
  c.n_hat = n_hat;
  c.validate();
  return c;
}

inline progressive_result run_progressive(const std::vector<search_stage>& stages, const stage_fitness& fitness,
                                          const stage_callback& between, const progress_callback& progress) {
  using detail::search_fail;
  if (stages.empty()) search_fail("run_progressive: no stages");
  if (!fitness) search_fail("run_progressive: empty fitness function");
  const int pairs = stages.front().target.rope.pairs();
  const std::int64_t l0 = stages.front().target.original_length;
  progressive_result out;
  out.factors.original_max_position = l0;
  out.factors.short_factor.assign(detail::uz(pairs), 1.0);
  bool have_long = false;
  for (std::size_t i = 0; i < stages.size(); ++i) {
    const search_stage& st = stages[i];
    const std::string where = "run_progressive: stage " + std::to_string(i) + " (" + st.name + ")";
    if (st.target.rope.pairs() != pairs || st.space.pairs != pairs) search_fail(where + ": pairs differ between stages");
    if (st.target.original_length != l0) search_fail(where + ": original_length differs between stages");
    search_seeds seeds = st.seeds;
    if (st.seed_from_previous && i > 0) seeds.user.push_back(out.stages.back().best);
    const search_space space(st.space);
    evolutionary_search s(space, st.options, st.target, seeds);
    out.stages.push_back(s.run([&](const std::vector<search_point>& pts) { return fitness(i, st, pts); }, progress));
    const search_result& r = out.stages.back();
    if (st.short_window) {
      out.factors.short_factor = r.best.factors;
    } else {
      out.factors.long_factor = r.best.factors;
      out.factors.n_hat = r.best.n_hat;
      out.factors.max_position = std::max(out.factors.max_position, st.target.target_length());
      have_long = true;
    }
    if (between && i + 1 < stages.size()) between(i, st, r);
  }
  if (!have_long) search_fail("run_progressive: no long stage (every stage is short_window)");
  return out;
}

}  // namespace longrope
