// longrope: header-only LongRoPE positional interpolation. MIT License.
#pragma once

/// \file search/seeds.hpp
/// The starting vectors of a search: PI / NTK / YaRN baselines computed by
/// rope_frequencies itself, LongRoPE2's frozen NTK pairs, caller seeds.
/// Part of <longrope/search.hpp>.

#include <string>
#include <vector>

#include "operators.hpp"
#include "space.hpp"

namespace longrope {

// ===========================================================================
// Seeds

/// The factor vector lambda_i = theta_i / inv_freq_i of a baseline method at
/// the target's scale, from rope_frequencies itself: type linear (PI), ntk
/// (static NTK), or yarn (original_max_position = L0, default betas).
/// Throws longrope::error ("longrope.argument") for another type. O(pairs).
std::vector<double> baseline_factors(const search_target& target, rope_type type);

/// LongRoPE2's frozen pairs: the first critical_pair NTK factors at the
/// target's scale, for search_space_config::frozen_factors. Throws
/// ("longrope.argument") unless 0 <= critical_pair < pairs. O(pairs).
std::vector<double> ntk_frozen_factors(const search_target& target, int critical_pair);

/// Which vectors start the population (all snapped and repaired into the space).
struct search_seeds {
  bool pi = true;    ///< baseline_factors(target, rope_type::linear), n_hat 0.
  bool ntk = true;   ///< baseline_factors(target, rope_type::ntk), n_hat 0.
  bool yarn = true;  ///< baseline_factors(target, rope_type::yarn), n_hat 0.
  /// Caller seeds, e.g. a previous stage's best (factors as totals relative to
  /// the original RoPE). Listed after the baselines.
  std::vector<search_point> user;
};

/// The seed candidates, in order PI, NTK, YaRN, user, duplicates removed
/// (first kept). Throws longrope::error ("longrope.search") if none is left.
std::vector<candidate> make_seeds(const search_space& space, const search_target& target,
                                  const search_seeds& seeds);


// ---------------------------------------------------------------------------
// Implementation

inline std::vector<double> baseline_factors(const search_target& target, rope_type type) {
  target.validate();
  rope_config cfg = target.rope;
  cfg.type = type;
  cfg.n_hat = 0;
  switch (type) {
    case rope_type::linear:
    case rope_type::ntk:
      cfg.factor = target.scale;
      break;
    case rope_type::yarn:
      cfg.yarn = yarn_params{};
      cfg.yarn.factor = target.scale;
      cfg.yarn.original_max_position = target.original_length;
      break;
    default:
      LONGROPE_THROW("longrope.argument", std::string("baseline_factors: type must be linear, ntk or yarn, got ") +
                                              to_string(type));
  }
  return rope_frequencies(cfg).rescale_factors();
}

inline std::vector<double> ntk_frozen_factors(const search_target& target, int critical_pair) {
  if (critical_pair < 0 || critical_pair >= target.rope.pairs()) {
    LONGROPE_THROW("longrope.argument", "ntk_frozen_factors: critical_pair must be in [0, " +
                                            std::to_string(target.rope.pairs()) + "), got " +
                                            std::to_string(critical_pair));
  }
  auto f = baseline_factors(target, rope_type::ntk);
  f.resize(detail::uz(critical_pair));
  return f;
}

inline std::vector<candidate> make_seeds(const search_space& space, const search_target& target,
                                         const search_seeds& seeds) {
  std::vector<candidate> out;
  auto add = [&](const candidate& c) {
    if (std::find(out.begin(), out.end(), c) == out.end()) out.push_back(c);
  };
  if (seeds.pi || seeds.ntk || seeds.yarn) {
    if (target.rope.pairs() != space.pairs()) {
      detail::search_fail("make_seeds: target has " + std::to_string(target.rope.pairs()) +
                          " rotary pairs, the space " + std::to_string(space.pairs()));
    }
  }
  if (seeds.pi) add(snap(space, baseline_factors(target, rope_type::linear), 0));
  if (seeds.ntk) add(snap(space, baseline_factors(target, rope_type::ntk), 0));
  if (seeds.yarn) add(snap(space, baseline_factors(target, rope_type::yarn), 0));
  for (const auto& u : seeds.user) add(snap(space, u.factors, u.n_hat));
  if (out.empty()) detail::search_fail("make_seeds: no seeds (enable pi, ntk or yarn, or give user seeds)");
  return out;
}

}  // namespace longrope
