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
#include <optional>
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
  /// A progress callback cancelled the search (a factor run or the mscale
  /// stage): the result is the best so far, the stages after it did not run.
  bool stopped = false;
};

/// The state of search_longrope2 between generations: the factor stage's
/// (longrope::longrope2_checkpoint) and, once it is finished and the mscale
/// stage has started, that stage's.
struct longrope2_extension_checkpoint {
  longrope::longrope2_checkpoint factors;
  std::optional<longrope::search_checkpoint> mscale;
};
using longrope2_extension_checkpoint_callback = std::function<void(const longrope2_extension_checkpoint&)>;

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

/// Runs both stages. `resume` / `on_checkpoint` as longrope::longrope2_search,
/// over both stages (the mscale stage is checkpointed the same way; a state
/// with an mscale part needs opt.search_mscale and a finished factor stage):
/// a resumed search ends with the uninterrupted one's result. Throws
/// longrope::error on invalid options, a resume state that does not fit, or
/// what the fitness throws. O((#critical dims * search + mscale search) * fitness).
inline longrope2_extension_result search_longrope2(const model_config& mc, const longrope2_extension_options& opt,
                                                   const frequencies_fitness& fitness,
                                                   const longrope::progress_callback& progress = {},
                                                   const longrope2_extension_checkpoint* resume = nullptr,
                                                   const longrope2_extension_checkpoint_callback& on_checkpoint = {}) {
  if (resume && resume->mscale && !opt.search_mscale) {
    LONGROPE_THROW("longrope.search", "search_longrope2: the resume state has an mscale stage, the options do not");
  }
  longrope::search_target target;
  target.rope = make_rope_config(mc, scaling{}, opt.context);
  target.original_length = mc.seq_len;
  target.scale = static_cast<double>(opt.context) / static_cast<double>(mc.seq_len);
  longrope2_extension_result out;
  longrope2_extension_checkpoint state;  // the factor stage's last state
  longrope::longrope2_checkpoint_callback factor_saved;
  if (on_checkpoint) {
    factor_saved = [&](const longrope::longrope2_checkpoint& c) {
      state.factors = c;
      on_checkpoint(state);
    };
  }
  bool asked_stop = false;  // the callback said stop, maybe on the factor stage's very last generation
  longrope::progress_callback watched;
  if (progress) {
    watched = [&](const longrope::search_progress& p) {
      const bool go = progress(p);
      asked_stop = asked_stop || !go;
      return go;
    };
  }
  out.factors = longrope::longrope2_search(
      target, opt.search,
      [&](const std::vector<longrope::search_point>& pts) {
        std::vector<longrope::rope_frequencies> fs;
        fs.reserve(pts.size());
        for (const auto& p : pts) fs.push_back(longrope2_frequencies(mc, opt.context, p.factors));
        return fitness(fs);
      },
      watched, resume ? &resume->factors : nullptr, factor_saved);
  out.factor_score = out.factors.best.best_score;
  out.score = out.factor_score;
  out.stopped = out.factors.stopped || (asked_stop && opt.search_mscale);
  if (resume && resume->mscale && out.stopped) {
    LONGROPE_THROW("longrope.search", "search_longrope2: the resume state has an mscale stage but an unfinished factor stage");
  }
  const std::vector<double>& best = out.factors.best.best.factors;
  if (opt.search_mscale && !out.stopped) {
    const longrope::search_space space(longrope::mscale_space_config(target, opt.mscale_step));
    std::optional<longrope::evolutionary_search> started;
    if (resume && resume->mscale) {
      longrope::search_checkpoint cp = *resume->mscale;
      const auto& a = cp.space;
      const auto& b = space.config();
      if (a.pairs != b.pairs || a.lambda_min != b.lambda_min || a.lambda_max != b.lambda_max || a.step != b.step ||
          a.monotone != b.monotone || a.ntk_derived_pairs != b.ntk_derived_pairs || a.search_n_hat != b.search_n_hat) {
        LONGROPE_THROW("longrope.search", "search_longrope2: the resume state's mscale stage has another space");
      }
      cp.options.threads = opt.mscale.threads;
      started.emplace(cp);
    } else {
      started.emplace(space, opt.mscale, longrope::mscale_seeds(space, target));
    }
    longrope::evolutionary_search& ms = *started;
    auto save = [&] {
      if (!on_checkpoint) return;
      state.mscale = ms.checkpoint();
      on_checkpoint(state);
    };
    save();
    while (!ms.done()) {
      std::vector<longrope::rope_frequencies> fs;
      for (const auto& p : ms.ask_points()) fs.push_back(longrope2_frequencies(mc, opt.context, best, p.factors));
      ms.tell(fitness(fs));
      save();  // before the progress callback: a search it cancels resumes from here
      if (progress && !progress(ms.progress())) ms.cancel();
    }
    out.mscale = ms.result();
    out.stopped = out.mscale.reason == longrope::stop_reason::cancelled;
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
