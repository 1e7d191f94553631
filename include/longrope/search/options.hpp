// longrope: header-only LongRoPE positional interpolation. MIT License.
#pragma once

/// \file search/options.hpp
/// The driver's plain data: options (the paper's defaults), stop reasons,
/// progress, results, the checkpoint (the whole resumable state) and the
/// fitness callback types. Part of <longrope/search.hpp>.

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "operators.hpp"
#include "rng.hpp"
#include "space.hpp"
#include "strategy.hpp"

namespace longrope {

// ===========================================================================
// The driver

/// Parameters of the evolutionary loop; defaults are the paper's.
struct search_options {
  int population = 64;                 ///< P: size of the initial population (paper 64; 32 above 512k).
  int mutations = 16;                  ///< N1: mutated children per iteration (paper 16; 8 above 512k).
  int crossovers = 16;                 ///< N2: crossover children per iteration (paper 16; 8 above 512k).
  int top_k = 32;                      ///< k: elite kept and used as parents (paper 32).
  int iterations = 40;                 ///< T: generations after the initial one (paper 40).
  double mutation_probability = 0.3;   ///< p: per-pair resampling probability (paper 0.3).
  /// 0 (paper): a resampled pair may take any grid value (its neighbours
  /// allow, in bounded mode). r > 0: at most r grid steps from its current
  /// value (local refinement: converges to a grid optimum in fewer evaluations).
  int mutation_radius = 0;
  mutation_mode mutation = mutation_mode::bounded;  ///< bounded: the paper's operator.
  double n_hat_probability = 0.3;      ///< probability a mutation also changes n_hat (paper: unstated).
  crossover_policy crossover = crossover_policy::repair;
  /// Draws tried per child before its slot is left empty (every child must be
  /// new: never in the cache, never twice in a generation).
  int max_attempts = 64;
  std::uint64_t seed = 0;              ///< seeds the driver's search_rng.
  /// Early stopping: stop after `patience` consecutive generations none of
  /// which beat the reference best by more than `tolerance` (the reference is
  /// the best score at the last such improvement, so slow creeping gains
  /// below the tolerance do not keep a search alive). 0: off.
  int patience = 0;
  double tolerance = 0.0;              ///< absolute score improvement that counts (>= 0).
  std::int64_t max_evaluations = 0;    ///< evaluation budget (0: none); the last generation is cut to fit.
  double max_seconds = 0.0;            ///< wall-time budget in seconds (0: none), checked after each generation.
  /// run_parallel's worker count (0: std::thread::hardware_concurrency()).
  /// Does not affect results.
  int threads = 1;
  /// How each generation is drawn (search/strategy.hpp). evolution (the
  /// paper) uses every field above; random and gaussian draw N1 + N2 children
  /// per generation, gaussian and surrogate fit their model to the top k.
  search_strategy strategy = search_strategy::evolution;

  /// Throws longrope::error ("longrope.search") naming the field: population,
  /// top_k or max_attempts < 1, negative mutations, crossovers, iterations,
  /// patience, threads or budgets, probabilities outside [0, 1], a negative or
  /// non-finite tolerance; population, mutations, crossovers, top_k above 2^24,
  /// max_attempts above 2^20, threads above 1024. O(1).
  void validate() const;
};

/// Why a search stopped.
enum class stop_reason {
  running,            ///< not stopped.
  iterations,         ///< T generations done.
  converged,          ///< early stopping: no improvement for `patience` generations.
  evaluation_budget,  ///< max_evaluations reached.
  time_budget,        ///< max_seconds reached.
  exhausted,          ///< no new candidate could be generated (the space is used up around the elite).
  cancelled,          ///< the progress callback returned false, or cancel() was called.
};

inline const char* to_string(stop_reason r) noexcept {
  switch (r) {
    case stop_reason::running: return "running";
    case stop_reason::iterations: return "iterations";
    case stop_reason::converged: return "converged";
    case stop_reason::evaluation_budget: return "evaluation_budget";
    case stop_reason::time_budget: return "time_budget";
    case stop_reason::exhausted: return "exhausted";
    case stop_reason::cancelled: return "cancelled";
  }
  return "unknown";
}

/// A candidate with its score.
struct scored_candidate {
  candidate c;
  double score = 0.0;
};

/// Reported after every generation.
struct search_progress {
  int iteration = 0;               ///< generations done after the initial one (0 after the initial population).
  int iterations = 0;              ///< T.
  double best_score = 0.0;         ///< best so far (+inf before any evaluation).
  std::int64_t evaluations = 0;    ///< fitness evaluations so far (cache hits are never evaluated).
  std::int64_t generation_evaluations = 0;  ///< evaluations of the last generation.
  double elapsed_seconds = 0.0;    ///< wall time, accumulated across checkpoint/resume.
  /// Estimated wall time to finish: (mean time per evaluation) x (evaluations
  /// the remaining generations need at most), capped by the budgets; an upper
  /// estimate when early stopping or exhaustion ends the search sooner. NaN
  /// before the first evaluation, 0 once done.
  double seconds_left = 0.0;
  stop_reason status = stop_reason::running;
};

/// One human-readable progress line for a CLI, e.g.
///     "iter 12/40  best 4.31207  evals 448  elapsed 1m03s  left ~2m10s"
/// (status appended once done: "  done: converged"). Allocates the string.
std::string format_progress(const search_progress& p);

/// The outcome of a search.
struct search_result {
  search_point best;                      ///< the best factors and n_hat.
  candidate best_candidate;
  double best_score = 0.0;
  std::vector<scored_candidate> population;  ///< the final population, best first (total order).
  std::int64_t evaluations = 0;
  int iterations = 0;                     ///< generations done after the initial one.
  double elapsed_seconds = 0.0;
  stop_reason reason = stop_reason::running;
};

/// The complete state of a search (everything a resume needs), plain data.
/// <longrope/search_json.hpp> converts it to and from JSON.
struct search_checkpoint {
  search_space_config space;
  search_options options;
  search_rng::state_type rng{};
  int iteration = 0;                        ///< generations told after the initial one.
  bool initial_done = false;                ///< the initial population has been scored.
  std::vector<scored_candidate> population; ///< ranked, best first.
  std::vector<candidate> pending;           ///< the generation handed out by ask(), awaiting tell().
  std::vector<scored_candidate> cache;      ///< every evaluated candidate, ascending candidate order.
  std::int64_t evaluations = 0;
  std::int64_t generation_evaluations = 0;  ///< evaluations of the last told generation.
  /// Early stopping's reference: the best score at the last improvement larger than tolerance.
  double best_score = std::numeric_limits<double>::infinity();
  int stale_generations = 0;                ///< consecutive generations without such an improvement.
  double elapsed_seconds = 0.0;
  stop_reason status = stop_reason::running;
};

/// Scores a batch: returns one score per point, in order (lower is better).
/// Called from the thread that drives the search; parallelise inside freely.
using batch_fitness = std::function<std::vector<double>(const std::vector<search_point>&)>;
/// Scores one point; run_parallel calls it concurrently from several threads,
/// so it must be safe to call concurrently.
using point_fitness = std::function<double(const search_point&)>;
/// Called after every generation; return false to stop (status cancelled; the
/// state stays resumable: checkpoint() inside the callback, resume later).
using progress_callback = std::function<bool(const search_progress&)>;

// ---------------------------------------------------------------------------
// Implementation

inline void search_options::validate() const {
  using detail::search_fail;
  auto at_least = [](int v, int lo, const char* name) {
    if (v < lo) search_fail(std::string("options.") + name + ": must be >= " + std::to_string(lo) + ", got " + std::to_string(v));
  };
  at_least(population, 1, "population");
  at_least(mutations, 0, "mutations");
  at_least(crossovers, 0, "crossovers");
  at_least(top_k, 1, "top_k");
  at_least(iterations, 0, "iterations");
  at_least(max_attempts, 1, "max_attempts");
  at_least(patience, 0, "patience");
  at_least(threads, 0, "threads");
  at_least(mutation_radius, 0, "mutation_radius");
  // Upper bounds (issue 9): sums such as mutations + crossovers stay far inside int.
  auto at_most = [](int v, int hi, const char* name) {
    if (v > hi) search_fail(std::string("options.") + name + ": must be <= " + std::to_string(hi) + ", got " + std::to_string(v));
  };
  at_most(population, 1 << 24, "population");
  at_most(mutations, 1 << 24, "mutations");
  at_most(crossovers, 1 << 24, "crossovers");
  at_most(top_k, 1 << 24, "top_k");
  at_most(max_attempts, 1 << 20, "max_attempts");
  at_most(threads, 1024, "threads");
  auto prob = [](double v, const char* name) {
    if (!(v >= 0.0 && v <= 1.0)) search_fail(std::string("options.") + name + ": must be in [0, 1], got " + std::to_string(v));
  };
  prob(mutation_probability, "mutation_probability");
  prob(n_hat_probability, "n_hat_probability");
  if (!std::isfinite(tolerance) || tolerance < 0.0) search_fail("options.tolerance: must be finite and >= 0");
  if (max_evaluations < 0) search_fail("options.max_evaluations: must be >= 0 (0: no budget)");
  if (!(max_seconds >= 0.0)) search_fail("options.max_seconds: must be >= 0 (0: no budget)");
  if (crossover != crossover_policy::repair && crossover != crossover_policy::reject) {
    search_fail("options.crossover: unknown policy");
  }
  if (strategy != search_strategy::evolution && strategy != search_strategy::random &&
      strategy != search_strategy::gaussian && strategy != search_strategy::surrogate) {
    search_fail("options.strategy: unknown strategy");
  }
  if (mutation != mutation_mode::bounded && mutation != mutation_mode::push) {
    search_fail("options.mutation: unknown mode");
  }
}

namespace detail {
inline std::string format_duration(double seconds) {
  if (!std::isfinite(seconds)) return "?";
  const auto t = static_cast<long long>(std::llround(std::max(0.0, seconds)));
  char buf[48];
  if (t >= 3600) {
    std::snprintf(buf, sizeof buf, "%lldh%02lldm", t / 3600, (t / 60) % 60);
  } else if (t >= 60) {
    std::snprintf(buf, sizeof buf, "%lldm%02llds", t / 60, t % 60);
  } else {
    std::snprintf(buf, sizeof buf, "%llds", t);
  }
  return buf;
}
}  // namespace detail

inline std::string format_progress(const search_progress& p) {
  char buf[160];
  std::snprintf(buf, sizeof buf, "iter %d/%d  best %.6g  evals %lld  elapsed %s  left ~%s", p.iteration, p.iterations,
                p.best_score, static_cast<long long>(p.evaluations), detail::format_duration(p.elapsed_seconds).c_str(),
                detail::format_duration(p.seconds_left).c_str());
  std::string out = buf;
  if (p.status != stop_reason::running) out += std::string("  done: ") + to_string(p.status);
  return out;
}

}  // namespace longrope
