// longrope: header-only LongRoPE positional interpolation. MIT License.
#pragma once

/// \file search/longrope2.hpp
/// LongRoPE2 (Shang et al. 2025, arXiv 2502.20082) on the same search
/// machinery: the critical dimensions, the space with NTK-derived lower pairs
/// (a mode of search_space, not a second search), its NTK-style initial
/// population with mutation chains, one search per candidate critical
/// dimension keeping the best, and the per-pair mscale stage with the factors
/// fixed. Part of <longrope/search.hpp>; docs/search.md, "LongRoPE2".
///
/// Pairs are counted from 0 (pair i has theta_i = base^(-2i/d), d = rotary_dim).

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "driver.hpp"
#include "operators.hpp"
#include "space.hpp"

namespace longrope {

/// Theoretical critical dimension, in pairs:
///     d_tcd = ceil((d/2) * log_base(L_train / (2 pi)))
/// the first pair whose period 2 pi / theta_i exceeds L_train (pairs i >= d_tcd
/// never complete a period during pre-training), clamped to [0, d/2].
/// Throws longrope::error ("longrope.argument") on rotary_dim < 2 or odd, a
/// base that is not finite and > 1, or train_length < 1. O(1).
int theoretical_critical_dim(int rotary_dim, double base, std::int64_t train_length);

/// The smallest critical dimension LongRoPE2 searches:
///     d10_tcd = ceil((d/2) * log_base(L_train / (2 pi * 10)))
/// (the first pair whose period exceeds L_train / 10), clamped to [0, d/2].
/// Same errors as theoretical_critical_dim. O(1).
int d10_critical_dim(int rotary_dim, double base, std::int64_t train_length);

/// The critical dimensions longrope2_search tries when the options leave the
/// range open: [lo, hi] with lo = min(pairs - 1, d10_tcd) and hi =
/// max(lo, min(pairs - 1, d_tcd)), over target.rope's effective rotary
/// dimension, base and target.original_length. Throws as target.validate()
/// and theoretical_critical_dim. O(rotary_dim).
std::pair<int, int> longrope2_default_critical_dims(const search_target& target);

/// LongRoPE2's space for a critical dimension k: pairs i >= k searched on the
/// grid [s, 2s] step `step` (s = target.scale, monotone), pairs i < k derived
/// from the anchor by lambda_i = lambda_k^(i/k) (search_space_config::
/// ntk_derived_pairs = k), n_hat not searched (fixed 0). Throws
/// longrope::error ("longrope.search") for s < 1, k outside [0, pairs), or a
/// bad step. O(1).
search_space_config longrope2_space_config(const search_target& target, int critical_dim, double step = 0.01);

/// LongRoPE2's initial population for `space` (a longrope2_space_config): 8
/// NTK-style seeds, the searched pairs at scale s (1 + 0.1 j), j = 0..7,
/// rising by 0.1 per pair (snapped into the box), then mutation chains: slot
/// t mutates the last member of chain t mod (#seeds) with probability
/// mutation_probability per pair (up to 64 draws for a new candidate), until
/// `population` distinct candidates. Draws come from search_rng(seed).
/// O(population * pairs * 64) worst case.
std::vector<candidate> longrope2_initial_population(const search_space& space, const search_target& target,
                                                    int population, double mutation_probability, std::uint64_t seed);

/// What longrope2_search runs.
struct longrope2_options {
  search_options search;       ///< P, N1, N2, k, T, p, seed, budgets (per critical dimension).
  /// Candidate critical dimensions [critical_dim_min, critical_dim_max]; -1:
  /// d10_critical_dim / theoretical_critical_dim of the target (each clamped to
  /// [0, pairs - 1]). A single value fixes d_rcd.
  int critical_dim_min = -1;
  int critical_dim_max = -1;
  double step = 0.01;          ///< grid step of the searched pairs.
};

/// One search at one critical dimension.
struct longrope2_run {
  int critical_dim = 0;
  search_result result;
};

/// The outcome: the best run (lowest best_score; ties: the lower critical
/// dimension) and every run in order.
struct longrope2_result {
  int critical_dim = 0;
  search_result best;
  std::vector<longrope2_run> runs;
  /// The progress callback asked to stop (in a run, or on its last generation
  /// with runs left): the critical dimensions after it were not searched
  /// (`runs` holds those that ran; resume from the state).
  bool stopped = false;
};

/// The state of a longrope2_search between two generations: the checkpoint
/// of every run started so far, one per critical dimension from the range's
/// first, in order; all but the last are finished. Plain data (the CLI writes
/// each with <longrope/search_json.hpp>).
struct longrope2_checkpoint {
  std::vector<search_checkpoint> runs;
};
using longrope2_checkpoint_callback = std::function<void(const longrope2_checkpoint&)>;

/// Runs one evolutionary_search per critical dimension in the range (space:
/// longrope2_space_config, seeds: longrope2_initial_population with
/// options.search.seed), each scored by f (points carry the full factor
/// vector, derived pairs included, n_hat 0), and keeps the best. A progress
/// callback returning false cancels the current run and stops the search
/// (result.stopped). `resume`: continue from a state `on_checkpoint` was given
/// (the same target and options; threads may differ): the result equals the
/// uninterrupted search's. `on_checkpoint` is called when each run starts and
/// after each of its generations (before the progress callback), O(cache) each.
/// Throws longrope::error ("longrope.search") on an empty or invalid range, a
/// resume state that does not fit it (too many runs, an unfinished run before
/// the last, another space), or what the parts throw. O(#dims * search).
longrope2_result longrope2_search(const search_target& target, const longrope2_options& options,
                                  const batch_fitness& f, const progress_callback& progress = {},
                                  const longrope2_checkpoint* resume = nullptr,
                                  const longrope2_checkpoint_callback& on_checkpoint = {});

/// The per-pair mscale stage's space: pairs() values m_i on the grid [1, 2s]
/// step `step` (the paper: 1e-4), unordered (monotone = false), n_hat not
/// searched. A point's `factors` are then the mscale vector
/// (rope_config::pair_mscale), with the rescale factors fixed by the caller.
/// Throws longrope::error ("longrope.search") on s < 1 or a bad step. O(1).
search_space_config mscale_space_config(const search_target& target, double step = 0.01);

/// Seeds of the mscale stage: all ones (the factor stage's result unchanged
/// when it ran with attention factor 1) and every m_i = the default LongRoPE
/// attention factor sqrt(1 + ln s / ln L0) (the scalar, per pair), snapped.
std::vector<candidate> mscale_seeds(const search_space& space, const search_target& target);

// ---------------------------------------------------------------------------
// Implementation

namespace detail {

inline double critical_dim_value(int rotary_dim, double base, std::int64_t train_length, double divisor) {
  if (rotary_dim < 2 || rotary_dim % 2 != 0) {
    LONGROPE_THROW("longrope.argument", "critical dimension: rotary_dim must be even and >= 2, got " +
                                            std::to_string(rotary_dim));
  }
  if (!std::isfinite(base) || !(base > 1.0)) {
    LONGROPE_THROW("longrope.argument", "critical dimension: base must be finite and > 1, got " + std::to_string(base));
  }
  if (train_length < 1) {
    LONGROPE_THROW("longrope.argument", "critical dimension: train_length must be >= 1, got " +
                                            std::to_string(train_length));
  }
  const double two_pi = 6.283185307179586476925;
  const double half = static_cast<double>(rotary_dim / 2);
  const double v = half * std::log(static_cast<double>(train_length) / (two_pi * divisor)) / std::log(base);
  return std::clamp(std::ceil(v), 0.0, half);
}

}  // namespace detail

inline int theoretical_critical_dim(int rotary_dim, double base, std::int64_t train_length) {
  return static_cast<int>(detail::critical_dim_value(rotary_dim, base, train_length, 1.0));
}

inline int d10_critical_dim(int rotary_dim, double base, std::int64_t train_length) {
  return static_cast<int>(detail::critical_dim_value(rotary_dim, base, train_length, 10.0));
}

inline std::pair<int, int> longrope2_default_critical_dims(const search_target& target) {
  target.validate();
  const int pairs = target.rope.pairs();
  const int d = target.rope.effective_rotary_dim();
  const int lo = std::min(pairs - 1, d10_critical_dim(d, target.rope.base, target.original_length));
  const int hi = std::min(pairs - 1, theoretical_critical_dim(d, target.rope.base, target.original_length));
  return {lo, std::max(lo, hi)};
}

inline search_space_config longrope2_space_config(const search_target& target, int critical_dim, double step) {
  target.validate();
  if (!(target.scale >= 1.0)) detail::search_fail("longrope2: target.scale must be >= 1, got " + std::to_string(target.scale));
  const int pairs = target.rope.pairs();
  if (critical_dim < 0 || critical_dim >= pairs) {
    detail::search_fail("longrope2: critical_dim must be in [0, " + std::to_string(pairs) + "), got " +
                        std::to_string(critical_dim));
  }
  search_space_config c;
  c.pairs = pairs;
  c.lambda_min = target.scale;
  c.lambda_max = 2.0 * target.scale;
  c.step = step;
  c.ntk_derived_pairs = critical_dim;
  c.search_n_hat = false;
  return c;
}

inline std::vector<candidate> longrope2_initial_population(const search_space& space, const search_target& target,
                                                           int population, double mutation_probability,
                                                           std::uint64_t seed) {
  if (population < 1) detail::search_fail("longrope2_initial_population: population must be >= 1");
  const int pairs = space.pairs();
  const int k = space.frozen_pairs();
  std::vector<candidate> out;
  std::set<candidate> seen;
  for (int j = 0; j < 8 && static_cast<int>(out.size()) < population; ++j) {
    const double start = target.scale * (1.0 + 0.1 * j);
    std::vector<double> f(static_cast<std::size_t>(pairs), start);
    for (int i = k; i < pairs; ++i) f[detail::uz(i)] = start + 0.1 * (i - k);
    candidate c = snap(space, f, 0);
    if (seen.insert(c).second) out.push_back(std::move(c));
  }
  std::vector<candidate> chain = out;  // the last member of each chain
  search_rng rng(seed);
  const std::size_t n_chains = chain.size();
  for (std::size_t t = 0; static_cast<int>(out.size()) < population && t < 64u * static_cast<std::size_t>(population);
       ++t) {
    candidate& last = chain[t % n_chains];
    for (int attempt = 0; attempt < 64; ++attempt) {
      candidate child = mutate(space, last, mutation_probability, rng);
      if (seen.insert(child).second) {
        out.push_back(child);
        last = std::move(child);
        break;
      }
    }
  }
  return out;
}

inline longrope2_result longrope2_search(const search_target& target, const longrope2_options& options,
                                         const batch_fitness& f, const progress_callback& progress,
                                         const longrope2_checkpoint* resume,
                                         const longrope2_checkpoint_callback& on_checkpoint) {
  const auto [lo_default, hi_default] = longrope2_default_critical_dims(target);  // validates target
  const int pairs = target.rope.pairs();
  const int lo = options.critical_dim_min >= 0 ? options.critical_dim_min : lo_default;
  const int hi = options.critical_dim_max >= 0 ? options.critical_dim_max : std::max(lo, hi_default);
  if (lo > hi || lo < 0 || hi >= pairs) {
    detail::search_fail("longrope2: critical dimension range [" + std::to_string(lo) + ", " + std::to_string(hi) +
                        "] must be non-empty inside [0, " + std::to_string(pairs) + ")");
  }
  if (!f) detail::search_fail("longrope2: empty fitness function");
  if (resume && static_cast<int>(resume->runs.size()) > hi - lo + 1) {
    detail::search_fail("longrope2: the resume state has " + std::to_string(resume->runs.size()) +
                        " runs, the critical dimension range [" + std::to_string(lo) + ", " + std::to_string(hi) +
                        "] only " + std::to_string(hi - lo + 1));
  }
  longrope2_result out;
  longrope2_checkpoint state;  // finished runs
  for (int k = lo; k <= hi; ++k) {
    const search_space space(longrope2_space_config(target, k, options.step));
    search_options so = options.search;
    const auto idx = static_cast<std::size_t>(k - lo);
    std::optional<evolutionary_search> started;
    if (resume && idx < resume->runs.size()) {
      search_checkpoint cp = resume->runs[idx];
      const search_space_config& a = cp.space;
      const search_space_config& b = space.config();
      if (a.pairs != b.pairs || a.lambda_min != b.lambda_min || a.lambda_max != b.lambda_max || a.step != b.step ||
          a.ntk_derived_pairs != b.ntk_derived_pairs || a.monotone != b.monotone ||
          a.search_n_hat != b.search_n_hat || !a.frozen_factors.empty()) {
        detail::search_fail("longrope2: the resume state's run " + std::to_string(idx) +
                            " has another space than critical dimension " + std::to_string(k));
      }
      cp.options.threads = so.threads;
      started.emplace(cp);
      if (idx + 1 < resume->runs.size() && !started->done()) {
        detail::search_fail("longrope2: the resume state's run " + std::to_string(idx) + " is unfinished but not the last");
      }
    } else {
      started.emplace(space, so, longrope2_initial_population(space, target, so.population, so.mutation_probability, so.seed));
    }
    evolutionary_search& search = *started;
    auto save = [&] {
      if (!on_checkpoint) return;
      longrope2_checkpoint cp = state;
      cp.runs.push_back(search.checkpoint());
      on_checkpoint(cp);
    };
    save();
    bool asked_stop = false;
    while (!search.done()) {
      search.tell(f(search.ask_points()));
      save();  // before the progress callback: a search it cancels resumes from here
      if (progress && !progress(search.progress())) {
        search.cancel();
        asked_stop = true;
      }
    }
    longrope2_run run{k, search.result()};
    if (on_checkpoint) state.runs.push_back(search.checkpoint());
    // Asked to stop on a run's last generation: the run is complete, the next ones wait.
    const bool cancelled = run.result.reason == stop_reason::cancelled || (asked_stop && k < hi);
    if (out.runs.empty() || run.result.best_score < out.best.best_score) {
      out.critical_dim = k;
      out.best = run.result;
    }
    out.runs.push_back(std::move(run));
    if (cancelled) {
      out.stopped = true;
      break;
    }
  }
  return out;
}

inline search_space_config mscale_space_config(const search_target& target, double step) {
  target.validate();
  if (!(target.scale >= 1.0)) detail::search_fail("mscale: target.scale must be >= 1, got " + std::to_string(target.scale));
  search_space_config c;
  c.pairs = target.rope.pairs();
  c.lambda_min = 1.0;
  c.lambda_max = 2.0 * target.scale;
  c.step = step;
  c.monotone = false;
  c.search_n_hat = false;
  return c;
}

inline std::vector<candidate> mscale_seeds(const search_space& space, const search_target& target) {
  const double s = target.scale;
  const double att = s <= 1.0 ? 1.0 : std::sqrt(1.0 + std::log(s) / std::log(static_cast<double>(target.original_length)));
  std::vector<candidate> out{snap(space, std::vector<double>(detail::uz(space.pairs()), 1.0), 0)};
  candidate c = snap(space, std::vector<double>(detail::uz(space.pairs()), att), 0);
  if (c != out.front()) out.push_back(std::move(c));
  return out;
}

}  // namespace longrope
