// llama2c: a small llama2.c-compatible transformer beside longrope. MIT License.
#pragma once

/// \file extension.hpp
/// Context extension of a llama2.c model with longrope's evolutionary search:
/// the fitness of a candidate (factors lambda_i, n_hat) is the model's
/// perplexity on the given windows with those LongRoPE factors, evaluated for a
/// whole generation at once on a thread pool. The baselines (none, PI, NTK,
/// YaRN) are scored on the same windows first.
///
/// Everything the search decides is fixed by options.search.seed and the
/// scores; the scores do not depend on the thread count (perplexity.hpp), so
/// a seed reproduces the result exactly on any machine with the same
/// floating-point arithmetic.

#include <chrono>
#include <cstdint>
#include <optional>
#include <vector>

#include <longrope/search.hpp>

#include "perplexity.hpp"
#include "scaling.hpp"

namespace llama2c {

struct extension_options {
  std::int64_t context = 2048;          ///< target length L (the windows' length).
  longrope::search_options search;      ///< P, N1, N2, k, T, seed, threads, budgets.
  bool search_n_hat = true;             ///< search n_hat over the paper's set (else n_hat = 0).
  double lambda_max = 0.0;              ///< grid top; 0: the paper's 1.25 s.
  std::optional<double> attention_factor;  ///< applied to every candidate (default 1).
  /// Extra seeds after PI, NTK and YaRN, e.g. the factors found for a shorter
  /// target (the paper's progressive extension); snapped onto the grid.
  std::vector<longrope::search_point> seeds;
};

/// Perplexities of the baselines at the target context on the search windows.
struct baseline_perplexities {
  double none = 0, pi = 0, ntk = 0, yarn = 0;
};

struct extension_result {
  longrope::search_result search;       ///< best factors / n_hat / perplexity, population, evaluations.
  baseline_perplexities baselines;
  std::int64_t context = 0;
  double scale = 1.0;                   ///< context / trained length.
  longrope::rope_config rope;           ///< the searched factors as a LongRoPE config (short = long).
};

/// The search target of a model at `context`: its RoPE geometry, L0 = seq_len,
/// s = context / seq_len.
inline longrope::search_target search_target_for(const model_config& m, std::int64_t context) {
  longrope::search_target t;
  t.rope = make_rope_config(m, scaling{}, context);
  t.original_length = m.seq_len;
  t.scale = static_cast<double>(context) / static_cast<double>(m.seq_len);
  return t;
}

/// The search space of opt at the model's target (the paper's grid, opt's
/// lambda_max and n_hat choice): what search_factors and
/// search_factors_validated search. O(1).
inline longrope::search_space_config space_config_for(const model_config& m, const extension_options& opt) {
  longrope::search_space_config sc = longrope::default_space_config(search_target_for(m, opt.context));
  if (opt.lambda_max > 0.0) sc.lambda_max = opt.lambda_max;
  sc.search_n_hat = opt.search_n_hat;
  return sc;
}

/// Runs the search on `windows` (each `opt.context` tokens). `progress` is
/// called after every generation (return false to stop early).
/// Throws longrope::error on invalid options or windows of another length.
template <class T>
extension_result search_factors(const transformer<T>& model, const std::vector<std::vector<int>>& windows,
                                const extension_options& opt, const longrope::progress_callback& progress = {}) {
  for (const auto& w : windows) {
    if (static_cast<std::int64_t>(w.size()) != opt.context) {
      LONGROPE_THROW("longrope.argument", "search_factors: windows must have context = " + std::to_string(opt.context) +
                                              " tokens, got " + std::to_string(w.size()));
    }
  }
  if (windows.empty()) LONGROPE_THROW("longrope.argument", "search_factors: no windows");
  const model_config& mc = model.config();
  const int threads = opt.search.threads;
  extension_result out;
  out.context = opt.context;
  out.scale = static_cast<double>(opt.context) / static_cast<double>(mc.seq_len);

  {
    std::vector<longrope::rope_frequencies> base;
    for (auto m : {scaling_method::none, scaling_method::pi, scaling_method::ntk, scaling_method::yarn}) {
      scaling sc;
      sc.method = m;
      base.push_back(make_frequencies(mc, sc, opt.context));
    }
    const auto r = evaluate_perplexity(model, windows, base, threads);
    out.baselines = {r[0].perplexity(), r[1].perplexity(), r[2].perplexity(), r[3].perplexity()};
  }

  const longrope::search_target target = search_target_for(mc, opt.context);
  const longrope::search_space space(space_config_for(mc, opt));
  longrope::search_seeds seeds;
  seeds.user = opt.seeds;
  longrope::evolutionary_search search(space, opt.search, target, seeds);
  auto fitness = [&](const std::vector<longrope::search_point>& pts) {
    std::vector<longrope::rope_frequencies> fs;
    fs.reserve(pts.size());
    for (const auto& p : pts) {
      scaling s;
      s.method = scaling_method::longrope;
      s.factors = p.factors;
      s.n_hat = p.n_hat;
      s.attention_factor = opt.attention_factor;
      fs.push_back(make_frequencies(mc, s, opt.context));
    }
    const auto r = evaluate_perplexity(model, windows, fs, threads);
    std::vector<double> scores(r.size());
    for (std::size_t i = 0; i < r.size(); ++i) scores[i] = r[i].perplexity();
    return scores;
  };
  out.search = search.run(fitness, progress);
  scaling best;
  best.method = scaling_method::longrope;
  best.factors = out.search.best.factors;
  best.n_hat = out.search.best.n_hat;
  best.attention_factor = opt.attention_factor;
  out.rope = make_rope_config(mc, best, opt.context);
  out.rope.max_position_embeddings = opt.context;
  return out;
}

// Compiled once, in the longrope_toymodel library (models/src/); other
// scalar types are instantiated where they are used.
extern template extension_result search_factors(const transformer<float>&,
                                                const std::vector<std::vector<int>>&,
                                                const extension_options&, const longrope::progress_callback&);

}  // namespace llama2c
