// llama2c: a small llama2.c-compatible transformer beside longrope. MIT License.
#pragma once

/// \file longrope2_extension.hpp
/// LongRoPE2 on a llama2.c model: longrope::longrope2_search (one search per
/// candidate critical dimension, lower pairs NTK-derived, upper pairs in
/// [s, 2s]) with any batch fitness of frequencies (the needle loss of
/// needle.hpp, or perplexity), then optionally the per-pair mscale stage
/// (m_i in [1, 2s], factors fixed). Candidates run with attention factor 1,
/// as every LongRoPE candidate of the toy model (scaling.hpp), so the mscale
/// seed of all ones is exactly the factor stage's best.
/// The result carries what an exporter needs: a longrope rope_config with
/// short factors all 1.0 (the original RoPE inside the trained window, as
/// LongRoPE2 infers) and the searched long factors, plus the per-pair mscale.

#include <cstdint>
#include <functional>
#include <vector>

#include <longrope/search.hpp>

#include "scaling.hpp"

namespace llama2c {

/// Scores a batch of frequencies (lower is better), e.g. evaluate_needle's loss.
using frequencies_fitness = std::function<std::vector<double>(const std::vector<longrope::rope_frequencies>&)>;

struct longrope2_extension_options {
  std::int64_t context = 2048;           ///< target length L.
  longrope::longrope2_options search;    ///< critical-dimension range, P, N1, N2, k, T, seed.
  bool search_mscale = false;            ///< run the mscale stage after the factors.
  longrope::search_options mscale;       ///< the mscale stage's options.
  double mscale_step = 0.01;             ///< its grid step (the paper: 1e-4).
};

struct longrope2_extension_result {
  longrope::longrope2_result factors;    ///< every critical dimension's run and the best.
  longrope::search_result mscale;        ///< the mscale stage (evaluations 0 when not run).
  std::vector<double> pair_mscale;       ///< the best per-pair mscale; empty when not searched.
  double factor_score = 0.0;             ///< best fitness after the factor stage.
  double score = 0.0;                    ///< best fitness after both stages.
  /// Export: type longrope, short_factor all 1.0, long_factor searched,
  /// original_max_position = trained length, max_position_embeddings = L,
  /// attention_factor 1, pair_mscale (no transformers field carries it).
  longrope::rope_config rope;
};

/// The frequencies a LongRoPE2 candidate is scored with (attention factor 1,
/// factors at every length).
inline longrope::rope_frequencies longrope2_frequencies(const model_config& mc, std::int64_t context,
                                                        const std::vector<double>& factors,
                                                        const std::vector<double>& pair_mscale = {}) {
  scaling s;
  s.method = scaling_method::longrope;
  s.factors = factors;
  s.pair_mscale = pair_mscale;
  return make_frequencies(mc, s, context);
}

/// Runs both stages. Throws longrope::error on invalid options or what the
/// fitness throws. O((#critical dims * search + mscale search) * fitness).
inline longrope2_extension_result search_longrope2(const model_config& mc, const longrope2_extension_options& opt,
                                                   const frequencies_fitness& fitness,
                                                   const longrope::progress_callback& progress = {}) {
  longrope::search_target target;
  target.rope = make_rope_config(mc, scaling{}, opt.context);
  target.original_length = mc.seq_len;
  target.scale = static_cast<double>(opt.context) / static_cast<double>(mc.seq_len);
  longrope2_extension_result out;
  out.factors = longrope::longrope2_search(
      target, opt.search,
      [&](const std::vector<longrope::search_point>& pts) {
        std::vector<longrope::rope_frequencies> fs;
        fs.reserve(pts.size());
        for (const auto& p : pts) fs.push_back(longrope2_frequencies(mc, opt.context, p.factors));
        return fitness(fs);
      },
      progress);
  out.factor_score = out.factors.best.best_score;
  out.score = out.factor_score;
  const std::vector<double>& best = out.factors.best.best.factors;
  if (opt.search_mscale) {
    const longrope::search_space space(longrope::mscale_space_config(target, opt.mscale_step));
    longrope::evolutionary_search ms(space, opt.mscale, longrope::mscale_seeds(space, target));
    out.mscale = ms.run(
        [&](const std::vector<longrope::search_point>& pts) {
          std::vector<longrope::rope_frequencies> fs;
          fs.reserve(pts.size());
          for (const auto& p : pts) fs.push_back(longrope2_frequencies(mc, opt.context, best, p.factors));
          return fitness(fs);
        },
        progress);
    // The all-ones seed is the factor stage's best, so the stage never makes it worse.
    out.pair_mscale = out.mscale.best.factors;
    out.score = out.mscale.best_score;
  }
  longrope::rope_config r = make_rope_config(mc, scaling{}, opt.context);
  r.type = longrope::rope_type::longrope;
  r.longrope.short_factor.assign(best.size(), 1.0);
  r.longrope.long_factor = best;
  r.longrope.original_max_position = mc.seq_len;
  r.longrope.attention_factor = 1.0;
  r.max_position_embeddings = opt.context;
  r.pair_mscale = out.pair_mscale;
  r.validate();
  out.rope = r;
  return out;
}

}  // namespace llama2c
