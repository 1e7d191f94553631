// llama2c: a small llama2.c-compatible transformer beside longrope. MIT License.
#pragma once

/// \file validated_search.hpp
/// The factor search with a fitness designed against overfitting:
///   - windows spread over the whole text (many stories, many positions), not
///     the first W windows (spread_windows);
///   - a validation split inside the search: the search ranks candidates on
///     the train windows only; after every generation the best few train
///     candidates not yet validated are scored on validation windows the
///     selection never used, and the final candidate is the best on validation;
///   - the spread of the fitness estimate: per-window NLLs give the standard
///     error of the log-perplexity (window_statistics);
///   - early stopping on validation: stop once the validation best has not
///     improved for `validation_patience` generations.
/// Evaluations on validation windows are counted with the search's own
/// (each one scores a candidate on a window set, as a fitness evaluation does).

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <longrope/search.hpp>

#include "extension.hpp"
#include "perplexity.hpp"
#include "scaling.hpp"

namespace llama2c {

/// `count` windows of `context` tokens (BOS + context - 1 stream tokens) whose
/// starts are evenly spaced over stream[begin, end): window i starts at
/// begin + i * (span - (context - 1)) / max(count - 1, 1), span = end - begin.
/// Throws longrope::error ("longrope.argument") when count < 1, the range is
/// outside the stream or shorter than one window. O(count * context).
inline std::vector<std::vector<int>> spread_windows(const std::vector<int>& stream, std::int64_t context,
                                                    std::int64_t count, std::int64_t begin, std::int64_t end) {
  const auto n = static_cast<std::int64_t>(stream.size());
  if (context < 2 || count < 1 || begin < 0 || end > n || end - begin < context - 1) {
    LONGROPE_THROW("longrope.argument", "spread_windows: need count >= 1 windows of " + std::to_string(context) +
                                            " tokens inside [" + std::to_string(begin) + ", " + std::to_string(end) +
                                            ") of a " + std::to_string(n) + "-token stream");
  }
  const std::int64_t room = (end - begin) - (context - 1);
  std::vector<std::vector<int>> out(static_cast<std::size_t>(count));
  for (std::int64_t i = 0; i < count; ++i) {
    const std::int64_t start = begin + (count > 1 ? i * room / (count - 1) : 0);
    auto& w = out[static_cast<std::size_t>(i)];
    w.reserve(static_cast<std::size_t>(context));
    w.push_back(kBos);
    w.insert(w.end(), stream.begin() + static_cast<std::ptrdiff_t>(start),
             stream.begin() + static_cast<std::ptrdiff_t>(start + context - 1));
  }
  return out;
}

/// Train and validation windows interleaved over stream[begin, end):
/// train + validation evenly spread windows, every k-th one (k = total /
/// validation) going to validation, so both sets cover the whole range.
struct window_split {
  std::vector<std::vector<int>> train, validation;
};

inline window_split split_windows(const std::vector<int>& stream, std::int64_t context, std::int64_t train,
                                  std::int64_t validation, std::int64_t begin, std::int64_t end) {
  if (train < 1 || validation < 0) LONGROPE_THROW("longrope.argument", "split_windows: need train >= 1, validation >= 0");
  auto all = spread_windows(stream, context, train + validation, begin, end);
  window_split s;
  const std::int64_t total = train + validation;
  for (std::int64_t i = 0; i < total; ++i) {
    // Validation takes positions i with floor((i+1) v / total) > floor(i v / total).
    const bool val = validation > 0 && ((i + 1) * validation) / total > (i * validation) / total;
    (val ? s.validation : s.train).push_back(std::move(all[static_cast<std::size_t>(i)]));
  }
  return s;
}

/// Perplexity of one configuration over windows with the spread of the estimate.
struct window_stats {
  double perplexity = 0.0;     ///< exp(mean NLL per scored token).
  /// Standard error of log(perplexity) across windows: sd of the per-window
  /// mean NLLs / sqrt(windows) (0 for one window). The perplexity's ~68%
  /// interval is perplexity * exp(+-log_se).
  double log_se = 0.0;
  std::int64_t windows = 0;
};

/// window_stats of f on windows (all the same length), threads as evaluate_perplexity.
template <class T>
window_stats window_statistics(const transformer<T>& model, const std::vector<std::vector<int>>& windows,
                               const longrope::rope_frequencies& f, int threads = 1) {
  std::vector<double> per(windows.size());
  std::vector<longrope::rope_frequencies> one{f};
  parallel_for(windows.size(), 1, [&](std::size_t w, unsigned) {
    per[w] = evaluate_perplexity(model, std::vector<std::vector<int>>{windows[w]}, one, threads).front().nll_sum /
             static_cast<double>(windows[w].size() - 1);
  });
  window_stats s;
  s.windows = static_cast<std::int64_t>(windows.size());
  double mean = 0.0;
  for (double v : per) mean += v;
  mean /= static_cast<double>(per.size());
  double ss = 0.0;
  for (double v : per) ss += (v - mean) * (v - mean);
  s.perplexity = std::exp(mean);
  s.log_se = per.size() > 1 ? std::sqrt(ss / static_cast<double>(per.size() - 1) / static_cast<double>(per.size())) : 0.0;
  return s;
}

/// The frequencies a search point stands for (LongRoPE factors, n_hat, opt's attention factor).
inline longrope::rope_frequencies point_frequencies(const model_config& mc, const longrope::search_point& p,
                                                    std::int64_t context, std::optional<double> attention_factor) {
  scaling s;
  s.method = scaling_method::longrope;
  s.factors = p.factors;
  s.n_hat = p.n_hat;
  s.attention_factor = attention_factor;
  return make_frequencies(mc, s, context);
}

struct validated_options {
  extension_options extension;   ///< context, search options, n_hat, grid, seeds.
  int validate_top = 1;          ///< best train candidates validated per generation (if new).
  int validation_patience = 0;   ///< stop after this many generations without a validation gain (0: off).
};

/// One generation of a validated search: cost so far and the candidate it would return.
struct validated_step {
  std::int64_t evaluations = 0;   ///< train + validation evaluations so far.
  longrope::search_point chosen;  ///< best on validation so far (train best without validation windows).
  double chosen_validation = 0.0; ///< its validation perplexity (train perplexity without validation windows).
};

/// The validation half of a validated search's state; with the driver's
/// longrope::search_checkpoint it is everything a resumed search needs to end
/// with the result of the uninterrupted one (validated_checkpoint).
struct validation_state {
  std::vector<longrope::scored_candidate> validated;  ///< candidates scored on validation, ascending candidate order.
  longrope::candidate chosen;                         ///< best on validation so far.
  double chosen_validation = std::numeric_limits<double>::infinity();
  int stale = 0;                       ///< generations since the validation best last improved.
  std::int64_t evaluations = 0;        ///< validation evaluations so far.
  bool stopped = false;                ///< early stopping on validation fired.
  std::vector<validated_step> steps;   ///< one per generation so far.
};

/// A validated search's complete state after a generation (or before the first).
struct validated_checkpoint {
  longrope::search_checkpoint search;
  validation_state validation;
};

/// Called with the state at the start and after every generation (before the
/// progress callback, so a search cancelled there resumes from it).
using validated_checkpoint_callback = std::function<void(const validated_checkpoint&)>;

struct validated_result {
  extension_result extension;     ///< the search (best on train), baselines on the train windows; rope = chosen.
  longrope::search_point chosen;
  double chosen_train = 0.0, chosen_validation = 0.0;
  window_stats train_stats, validation_stats;  ///< the chosen candidate's, with the estimate's spread.
  baseline_perplexities validation_baselines;  ///< none, PI, NTK, YaRN on the validation windows.
  std::int64_t search_evaluations = 0, validation_evaluations = 0;
  std::string stop_reason;        ///< the search's, or "validation" (early stopping on validation).
  std::vector<validated_step> steps;  ///< one per generation.
};

/// Runs the search on `train`, validating as described in the file comment.
/// `validation` may be empty (then the chosen candidate is the train best and
/// no early stopping on validation happens). Throws as search_factors.
/// `resume`: continue from a validated_checkpoint taken by `on_checkpoint` of a
/// search with the same model, windows and options (the search options come
/// from the checkpoint); the result is bit-identical to the uninterrupted
/// search's (elapsed time aside). Throws longrope::error ("longrope.search") when
/// the checkpoint is inconsistent or its space has another number of pairs.
/// `on_checkpoint` costs O(evaluations * pairs) per generation.
template <class T>
validated_result search_factors_validated(const transformer<T>& model, const std::vector<std::vector<int>>& train,
                                          const std::vector<std::vector<int>>& validation,
                                          const validated_options& vo,
                                          const longrope::progress_callback& progress = {},
                                          const validated_checkpoint* resume = nullptr,
                                          const validated_checkpoint_callback& on_checkpoint = {}) {
  const extension_options& opt = vo.extension;
  const model_config& mc = model.config();
  const int threads = opt.search.threads;
  for (const auto* set : {&train, &validation}) {
    for (const auto& w : *set) {
      if (static_cast<std::int64_t>(w.size()) != opt.context) {
        LONGROPE_THROW("longrope.argument", "search_factors_validated: windows must have context = " +
                                                std::to_string(opt.context) + " tokens");
      }
    }
  }
  if (train.empty()) LONGROPE_THROW("longrope.argument", "search_factors_validated: no train windows");
  validated_result out;
  extension_result& ext = out.extension;
  ext.context = opt.context;
  ext.scale = static_cast<double>(opt.context) / static_cast<double>(mc.seq_len);
  {
    std::vector<longrope::rope_frequencies> base;
    for (auto m : {scaling_method::none, scaling_method::pi, scaling_method::ntk, scaling_method::yarn}) {
      scaling sc;
      sc.method = m;
      base.push_back(make_frequencies(mc, sc, opt.context));
    }
    const auto r = evaluate_perplexity(model, train, base, threads);
    ext.baselines = {r[0].perplexity(), r[1].perplexity(), r[2].perplexity(), r[3].perplexity()};
    if (!validation.empty()) {
      const auto v = evaluate_perplexity(model, validation, base, threads);
      out.validation_baselines = {v[0].perplexity(), v[1].perplexity(), v[2].perplexity(), v[3].perplexity()};
    }
  }
  const longrope::search_target target = search_target_for(mc, opt.context);
  const longrope::search_space space(space_config_for(mc, opt));
  longrope::search_seeds seeds;
  seeds.user = opt.seeds;
  std::optional<longrope::evolutionary_search> started;
  if (resume) {
    started.emplace(resume->search);
    if (started->space().pairs() != space.pairs()) {
      LONGROPE_THROW("longrope.search", "search_factors_validated: the checkpoint's space has " +
                                            std::to_string(started->space().pairs()) + " pairs, the model " +
                                            std::to_string(space.pairs()));
    }
  } else {
    started.emplace(space, opt.search, target, seeds);
  }
  longrope::evolutionary_search& search = *started;

  auto score = [&](const std::vector<std::vector<int>>& wins, const std::vector<longrope::search_point>& pts) {
    std::vector<longrope::rope_frequencies> fs;
    fs.reserve(pts.size());
    for (const auto& p : pts) fs.push_back(point_frequencies(mc, p, opt.context, opt.attention_factor));
    const auto r = evaluate_perplexity(model, wins, fs, threads);
    std::vector<double> s(r.size());
    for (std::size_t i = 0; i < r.size(); ++i) s[i] = r[i].perplexity();
    return s;
  };
  std::map<longrope::candidate, double> validated;  // candidate -> validation perplexity
  validation_state vs0;
  if (resume) {
    vs0 = resume->validation;
    for (const auto& e : vs0.validated) {
      if (!search.space().is_valid(e.c) || !validated.emplace(e.c, e.score).second) {
        LONGROPE_THROW("longrope.search", "search_factors_validated: checkpoint validation: invalid or duplicate candidate");
      }
    }
    if (!vs0.chosen.lambda_index.empty() && !search.space().is_valid(vs0.chosen)) {
      LONGROPE_THROW("longrope.search", "search_factors_validated: checkpoint validation.chosen: not in the space");
    }
    if (vs0.stale < 0 || vs0.evaluations < 0) {
      LONGROPE_THROW("longrope.search", "search_factors_validated: checkpoint validation: negative counter");
    }
  }
  longrope::candidate chosen = vs0.chosen;
  double chosen_val = vs0.chosen_validation;
  int stale = vs0.stale;
  bool stopped_on_validation = vs0.stopped;
  out.validation_evaluations = vs0.evaluations;
  out.steps = vs0.steps;
  if (stopped_on_validation) search.cancel();
  auto save = [&] {
    if (!on_checkpoint) return;
    validated_checkpoint cp;
    cp.search = search.checkpoint();
    auto& v = cp.validation;
    v.validated.reserve(validated.size());
    for (const auto& e : validated) v.validated.push_back({e.first, e.second});
    v.chosen = chosen;
    v.chosen_validation = chosen_val;
    v.stale = stale;
    v.evaluations = out.validation_evaluations;
    v.stopped = stopped_on_validation;
    v.steps = out.steps;
    on_checkpoint(cp);
  };
  save();
  while (!search.done()) {
    search.tell(score(train, search.ask_points()));
    bool improved = false;
    if (validation.empty()) {
      chosen = search.best().c;
      chosen_val = search.best().score;
    } else {
      std::vector<longrope::candidate> todo;
      const auto& pop = search.result().population;
      for (std::size_t i = 0; i < pop.size() && static_cast<int>(todo.size()) < vo.validate_top; ++i) {
        if (validated.count(pop[i].c) == 0) todo.push_back(pop[i].c);
      }
      std::vector<longrope::search_point> pts;
      for (const auto& c : todo) pts.push_back(space.point(c));
      const auto vs = pts.empty() ? std::vector<double>{} : score(validation, pts);
      out.validation_evaluations += static_cast<std::int64_t>(vs.size());
      for (std::size_t i = 0; i < todo.size(); ++i) {
        const double v = std::isnan(vs[i]) ? std::numeric_limits<double>::infinity() : vs[i];
        validated.emplace(todo[i], v);
        if (v < chosen_val || (v == chosen_val && todo[i] < chosen)) {
          chosen_val = v;
          chosen = todo[i];
          improved = true;
        }
      }
      stale = improved ? 0 : stale + 1;
    }
    out.steps.push_back({search.progress().evaluations + out.validation_evaluations, space.point(chosen), chosen_val});
    if (!validation.empty() && vo.validation_patience > 0 && stale >= vo.validation_patience && !search.done()) {
      stopped_on_validation = true;
      search.cancel();
    }
    save();  // before the progress callback: a search it cancels resumes from here
    if (progress && !progress(search.progress())) search.cancel();
  }
  ext.search = search.result();
  out.search_evaluations = ext.search.evaluations;
  out.stop_reason = stopped_on_validation ? "validation" : longrope::to_string(ext.search.reason);
  out.chosen = space.point(chosen);
  out.chosen_validation = chosen_val;
  const auto f = point_frequencies(mc, out.chosen, opt.context, opt.attention_factor);
  out.train_stats = window_statistics(model, train, f, threads);
  out.chosen_train = out.train_stats.perplexity;
  if (!validation.empty()) out.validation_stats = window_statistics(model, validation, f, threads);
  scaling best;
  best.method = scaling_method::longrope;
  best.factors = out.chosen.factors;
  best.n_hat = out.chosen.n_hat;
  best.attention_factor = opt.attention_factor;
  ext.rope = make_rope_config(mc, best, opt.context);
  ext.rope.max_position_embeddings = opt.context;
  return out;
}

// Compiled once, in the longrope_toymodel library (models/src/); other
// scalar types are instantiated where they are used.
extern template window_stats window_statistics(const transformer<float>&,
                                               const std::vector<std::vector<int>>&,
                                               const longrope::rope_frequencies&, int);
extern template validated_result search_factors_validated(
    const transformer<float>&, const std::vector<std::vector<int>>&, const std::vector<std::vector<int>>&,
    const validated_options&, const longrope::progress_callback&, const validated_checkpoint*,
    const validated_checkpoint_callback&);

}  // namespace llama2c
