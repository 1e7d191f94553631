// longrope: header-only LongRoPE positional interpolation. MIT License.
#pragma once

/// \file search.hpp
/// The LongRoPE evolutionary search (Ding et al. 2024, Algorithm 1): find the
/// per-pair rescale factors lambda_i (and the start-token cutoff n_hat) that
/// minimise a caller-supplied fitness, typically a model's perplexity at the
/// target length L = s * L0. See docs/search.md for the algorithm and a
/// complete example.
///
/// Pieces, from the bottom up:
///   search_rng, random_u64, uniform_index, bernoulli
///       a serialisable engine and distributions whose output is fixed by this
///       header (std:: distributions are implementation-defined).
///   search_space
///       the grid lambda_min + k * step (k = grid index), the monotone
///       constraint lambda_i <= lambda_{i+1}, the n_hat value set and the
///       frozen pairs (LongRoPE2). Candidates are integer grid indices, so
///       equality and caching are exact.
///   mutate, mutate_n_hat, crossover, repair, snap
///       the genetic operators, templated on any UniformRandomBitGenerator.
///       Every one returns a candidate on the grid that satisfies the constraint.
///   baseline_factors, make_seeds
///       the PI / NTK / YaRN seed vectors, from rope_frequencies itself.
///   evolutionary_search
///       the elitist driver: ask()/tell() for evaluation anywhere (other
///       processes, machines), run() with a batch fitness, run_parallel() with
///       a per-candidate fitness on a built-in std::thread pool. Deterministic
///       for a seed whatever the thread count or evaluation order; checkpoint()
///       captures the whole state (<longrope/search_json.hpp> writes it as JSON).
///   longrope_factors, search_stage, run_progressive
///       progressive extension: stages at growing scales, a callback between
///       stages (fine-tuning in the paper), a short-window stage for
///       short_factor, and the resulting rope_config.
///
/// Scores: lower is better (perplexity). NaN scores count as +infinity. The
/// ranking is a total order: (score, candidate) lexicographically, so ties
/// never depend on evaluation order.

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <functional>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "config.hpp"
#include "error.hpp"
#include "frequencies.hpp"

#define LONGROPE_INTERNAL_INCLUDE
#include "detail/search_pool.hpp"
#undef LONGROPE_INTERNAL_INCLUDE

namespace longrope {

// ===========================================================================
// Random numbers

/// xoshiro256** (Blackman & Vigna): a small, fast engine whose full state is
/// four 64-bit words, so a search checkpoint can store and restore it exactly.
/// Satisfies UniformRandomBitGenerator. Seeded through splitmix64, so every
/// 64-bit seed (including 0) gives a valid, well-mixed state.
class search_rng {
 public:
  using result_type = std::uint64_t;
  using state_type = std::array<std::uint64_t, 4>;

  /// Seeds the four words from splitmix64(seed). O(1).
  explicit search_rng(std::uint64_t seed = 0) noexcept {
    for (auto& w : s_) {
      seed += 0x9e3779b97f4a7c15ULL;
      std::uint64_t z = seed;
      z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
      z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
      w = z ^ (z >> 31);
    }
  }
  static constexpr result_type min() noexcept { return 0; }
  static constexpr result_type max() noexcept { return ~std::uint64_t{0}; }

  /// The next 64 random bits. O(1).
  result_type operator()() noexcept {
    const std::uint64_t r = rotl(s_[1] * 5, 7) * 9;
    const std::uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = rotl(s_[3], 45);
    return r;
  }

  /// The complete state (for checkpoints).
  const state_type& state() const noexcept { return s_; }
  /// Restores a state from state(). Throws longrope::error ("longrope.search")
  /// for the all-zero state, which xoshiro cannot leave.
  void set_state(const state_type& s) {
    if (s[0] == 0 && s[1] == 0 && s[2] == 0 && s[3] == 0) {
      LONGROPE_THROW("longrope.search", "rng state: all-zero state is invalid for xoshiro256**");
    }
    s_ = s;
  }
  friend bool operator==(const search_rng& a, const search_rng& b) noexcept { return a.s_ == b.s_; }
  friend bool operator!=(const search_rng& a, const search_rng& b) noexcept { return !(a == b); }

 private:
  static std::uint64_t rotl(std::uint64_t x, int k) noexcept { return (x << k) | (x >> (64 - k)); }
  state_type s_{};
};

/// 64 uniformly random bits from any UniformRandomBitGenerator g, by
/// concatenating draws (rejecting values above the largest power-of-two range
/// the engine covers). The sequence depends only on g's outputs, so results
/// are identical across standard libraries. O(1) expected calls to g.
template <class URBG>
std::uint64_t random_u64(URBG& g) {
  using R = typename URBG::result_type;
  constexpr std::uint64_t range = static_cast<std::uint64_t>(URBG::max() - URBG::min());
  static_assert(range > 0, "random_u64: the engine must produce at least two values");
  if constexpr (range == ~std::uint64_t{0}) {
    return static_cast<std::uint64_t>(g() - URBG::min());
  } else {
    // b = number of whole bits per draw: 2^b - 1 <= range.
    constexpr int bits = [] {
      int b = 1;
      while (b < 63 && ((std::uint64_t{1} << (b + 1)) - 1) <= range) ++b;
      return b;
    }();
    constexpr std::uint64_t limit = std::uint64_t{1} << bits;
    std::uint64_t out = 0;
    for (int have = 0; have < 64; have += bits) {
      std::uint64_t x = 0;
      do {
        x = static_cast<std::uint64_t>(static_cast<R>(g() - URBG::min()));
      } while (x >= limit);
      out = (out << bits) | x;
    }
    return out;
  }
}

/// A uniformly distributed integer in [0, n), n >= 1 (n = 1: 0, no draw), without modulo bias
/// (rejection below 2^64 mod n). Fully specified here, unlike
/// std::uniform_int_distribution. O(1) expected.
template <class URBG>
std::uint64_t uniform_index(URBG& g, std::uint64_t n) {
  LONGROPE_ASSERT(n >= 1);
  if (n <= 1) return 0;
  const std::uint64_t threshold = (~n + 1) % n;  // 2^64 mod n
  for (;;) {
    const std::uint64_t x = random_u64(g);
    if (x >= threshold) return x % n;
  }
}

/// A uniform double in [0, 1) with 53 random bits. O(1).
template <class URBG>
double uniform_unit(URBG& g) {
  return static_cast<double>(random_u64(g) >> 11) * 0x1.0p-53;
}

/// True with probability p (p <= 0: never, p >= 1: always, each consuming one draw). O(1).
template <class URBG>
bool bernoulli(URBG& g, double p) {
  return uniform_unit(g) < p;
}

// ===========================================================================
// The search space

/// The paper's n_hat candidate set {0, 1, 2, 4, 8, 12, 16, 20, 24, 28, 32, 64, 128, 256}.
inline std::vector<std::int64_t> paper_n_hat_values() {
  return {0, 1, 2, 4, 8, 12, 16, 20, 24, 28, 32, 64, 128, 256};
}

/// What is being extended: the model's RoPE geometry, its trained length L0 and
/// the scale s of the target length L = s * L0.
struct search_target {
  /// head_dim, rotary_dim, base (and layout) of the model; the scaling fields
  /// (type, factor, ...) are ignored.
  rope_config rope;
  std::int64_t original_length = 0;  ///< L0 > 0 (original_max_position_embeddings).
  double scale = 1.0;                ///< s > 0; the target length is round(s * L0).

  /// round(scale * original_length).
  std::int64_t target_length() const noexcept {
    return static_cast<std::int64_t>(std::llround(scale * static_cast<double>(original_length)));
  }
  /// Throws longrope::error ("longrope.search") naming the field on a bad value. O(rotary_dim).
  void validate() const;
};

/// Plain-data description of a search space (serialised in checkpoints).
struct search_space_config {
  int pairs = 0;              ///< rotary_dim / 2: length of every factor vector.
  double lambda_min = 1.0;    ///< lowest grid value (paper: 1.0).
  double lambda_max = 0.0;    ///< highest grid value (paper: 1.25 s); see default_space_config.
  double step = 0.01;         ///< grid step (paper: 0.01).
  /// LongRoPE2: factors of the pairs below the critical pair, kept fixed (not
  /// on the grid, not searched); its size is the critical pair index. Must be
  /// non-decreasing, and the searched pairs are kept >= its last value so the
  /// whole vector stays monotone. Empty: every pair is searched (the paper).
  std::vector<double> frozen_factors;
  /// The n_hat values searched (sorted ascending, unique, >= 0). A single value
  /// fixes n_hat. Default: the paper's 14 values.
  std::vector<std::int64_t> n_hat_values = paper_n_hat_values();
  /// false leaves n_hat out of the search: n_hat is fixed at 0 whatever n_hat_values holds
  /// (the official release's behaviour).
  bool search_n_hat = true;
};

/// The paper's space for a target: pairs = rotary_dim / 2, grid [1, 1.25 s]
/// step 0.01, the 14 n_hat values, no frozen pairs. Throws longrope::error on
/// an invalid target. O(1).
search_space_config default_space_config(const search_target& target);

/// One candidate: a grid index per searched pair (non-decreasing) and the index
/// of its n_hat in the space's value set. Compared lexicographically
/// (n_hat_index first, then lambda_index), the total order used to break score ties.
struct candidate {
  std::vector<int> lambda_index;
  int n_hat_index = 0;

  friend bool operator==(const candidate& a, const candidate& b) noexcept {
    return a.n_hat_index == b.n_hat_index && a.lambda_index == b.lambda_index;
  }
  friend bool operator!=(const candidate& a, const candidate& b) noexcept { return !(a == b); }
  friend bool operator<(const candidate& a, const candidate& b) noexcept {
    if (a.n_hat_index != b.n_hat_index) return a.n_hat_index < b.n_hat_index;
    return a.lambda_index < b.lambda_index;
  }
};

/// What a fitness function scores: the full factor vector (pairs() doubles,
/// frozen pairs included, each lambda_i = theta_i / inv_freq_i relative to the
/// original RoPE) and n_hat. Plug factors into rope_config::longrope.long_factor.
struct search_point {
  std::vector<double> factors;
  std::int64_t n_hat = 0;
};

/// The rope_config a fitness evaluates for point p: target.rope's geometry,
/// type longrope with short_factor = long_factor = p.factors (so either
/// factor-set policy uses them), original_max_position = L0,
/// max_position_embeddings = target_length() (attention factor: transformers'
/// default sqrt(1 + ln s / ln L0); set longrope.attention_factor on the result
/// to evaluate without it, as the LongRoPE paper's LLaMA2 runs did), n_hat =
/// p.n_hat. Validated: throws longrope::error ("longrope.config") on a wrong
/// factor count. O(pairs).
rope_config to_rope_config(const search_target& target, const search_point& p);

/// A validated search space: the grid, its bounds, the n_hat values. Immutable
/// and thread-safe after construction.
class search_space {
 public:
  /// Validates cfg. Throws longrope::error ("longrope.search") naming the field:
  /// pairs < 1, a non-finite or non-positive bound or step, lambda_max <
  /// lambda_min, a grid of more than 2^30 points, frozen_factors as long as
  /// pairs, non-positive, decreasing or above lambda_max, n_hat values not
  /// ascending, negative or empty. O(pairs + n_hat values).
  explicit search_space(search_space_config cfg);

  const search_space_config& config() const noexcept { return cfg_; }
  /// Length of a factor vector (rotary_dim / 2).
  int pairs() const noexcept { return cfg_.pairs; }
  /// Number of frozen pairs (the critical pair index), 0 without LongRoPE2 freezing.
  int frozen_pairs() const noexcept { return static_cast<int>(cfg_.frozen_factors.size()); }
  /// Number of searched pairs: the length of candidate::lambda_index.
  int free_pairs() const noexcept { return cfg_.pairs - frozen_pairs(); }
  /// Number of grid points: values lambda_min + k * step, k in [0, grid_size()).
  int grid_size() const noexcept { return grid_size_; }
  /// Smallest grid index a searched pair may take (> 0 only above frozen factors).
  int min_index() const noexcept { return min_index_; }
  /// Largest grid index, grid_size() - 1.
  int max_index() const noexcept { return grid_size_ - 1; }
  /// Grid value of index k. When 1/step and lambda_min/step are integers
  /// (the default 0.01 grid) it is computed as an integer over 1/step, so it is
  /// the double nearest the decimal (1.37, never 1.3699999999999999). O(1).
  double value(int k) const noexcept {
    if (decimal_) return static_cast<double>(origin_units_ + k) / units_;
    return cfg_.lambda_min + static_cast<double>(k) * cfg_.step;
  }
  /// Nearest grid index to v, clamped to [0, max_index()]. O(1).
  int nearest_index(double v) const noexcept;
  /// The effective n_hat value set ({0} when search_n_hat is false).
  const std::vector<std::int64_t>& n_hat_values() const noexcept { return n_hat_; }
  /// Index of the value in n_hat_values() nearest n (ties: the smaller). O(#values).
  int nearest_n_hat_index(std::int64_t n) const noexcept;

  /// True iff c has free_pairs() indices in [min_index(), max_index()],
  /// non-decreasing, and an n_hat index inside the set. O(pairs), noexcept.
  bool is_valid(const candidate& c) const noexcept;
  /// Throws longrope::error ("longrope.argument") naming the first violation of is_valid.
  void check(const candidate& c, const char* what) const;

  /// The full factor vector (frozen then grid values) and n_hat of c.
  /// Precondition: is_valid(c). O(pairs), allocates one vector.
  search_point point(const candidate& c) const;

 private:
  search_space_config cfg_;
  std::vector<std::int64_t> n_hat_;
  int grid_size_ = 0;
  int min_index_ = 0;
  bool decimal_ = false;
  double units_ = 0.0;
  std::int64_t origin_units_ = 0;
};

// ===========================================================================
// Operators. None of them returns a candidate that is off the grid or breaks
// the constraint; inputs that do are rejected with longrope::error
// ("longrope.argument"), except repair() and snap() whose job is to fix them.

/// Projects c onto the space in place: clamps every index to [min_index(),
/// max_index()], then replaces each run that breaks lambda_i <= lambda_{i+1}
/// by its rounded mean (pool-adjacent-violators: the monotone vector nearest c
/// in L2, rounded to the grid; rounding preserves the order). Resizes a
/// lambda_index of the wrong length (pads with the last value or min_index())
/// and clamps n_hat_index. Valid candidates are unchanged. O(pairs), no draws.
void repair(const search_space& space, candidate& c);

/// Snaps a factor vector (pairs() doubles, e.g. a PI / NTK / YaRN seed or a
/// previous stage's result) and an n_hat to the nearest valid candidate:
/// frozen entries are ignored, each searched factor goes to its nearest grid
/// index, then repair(); n_hat goes to the nearest value of the set.
/// Throws longrope::error ("longrope.argument") on a wrong size or a
/// non-finite factor. O(pairs).
candidate snap(const search_space& space, const std::vector<double>& factors, std::int64_t n_hat = 0);

/// How mutate() keeps the constraint when it resamples a pair.
enum class mutation_mode {
  /// The paper's: the new value lies between the current neighbours, so the
  /// rest of the vector never moves. A run of equal values (a plateau) can then
  /// only move one pair at a time, which is slow when the optimum sits on one.
  bounded,
  /// The new value may be anywhere in the window (radius, or the whole grid);
  /// neighbours that would break the constraint are pushed to it, so plateaus
  /// move as a block.
  push,
};

/// Mutation (paper): visits the searched pairs in one direction (chosen by a
/// fair coin, so both ends of the vector move) and resamples each, with
/// probability p, uniformly among the grid indices its current neighbours
/// allow ([left neighbour, right neighbour], bounds at the ends). The
/// constraint holds by construction. radius > 0 further limits a new value to
/// [current - radius, current + radius]; mode push lets it leave the
/// neighbours' range and pushes the neighbours instead (see mutation_mode).
/// n_hat is not touched (mutate_n_hat). May return the parent unchanged.
/// Throws longrope::error ("longrope.argument") on an invalid parent.
/// O(pairs) draws (push: O(pairs^2) worst case moves, O(pairs) typical).
template <class URBG>
candidate mutate(const search_space& space, const candidate& parent, double p, URBG& g, int radius = 0,
                 mutation_mode mode = mutation_mode::bounded);

/// With probability p, replaces c's n_hat by a different value of the set,
/// chosen uniformly (no-op for a single-value set, no draw then). O(1).
template <class URBG>
void mutate_n_hat(const search_space& space, candidate& c, double p, URBG& g);

/// What crossover does with a child that breaks the constraint.
enum class crossover_policy {
  repair,  ///< project it onto the constraint with repair() (default).
  reject,  ///< return std::nullopt (the official release).
};

/// Crossover (paper): the child takes each searched pair, and n_hat, from a or
/// b with probability 1/2 each; a child that breaks the constraint is repaired
/// or rejected per policy. Throws on invalid parents. O(pairs) bits drawn.
template <class URBG>
std::optional<candidate> crossover(const search_space& space, const candidate& a, const candidate& b, URBG& g,
                                   crossover_policy policy = crossover_policy::repair);

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

/// The elitist loop of the paper, as a state machine:
///
///     pending = unique(seeds) + mutations of seeds, up to P     (generation 0)
///     loop:  ask() -> pending;  tell(scores)  -> cache, population = rank(elite + pending)
///            stop? (T generations, patience, budgets, cancel)
///            elite = top k of population
///            pending = N1 mutations (parent uniform in elite, each pair resampled w.p. p,
///                      n_hat w.p. n_hat_probability)
///                    + N2 crossovers (two distinct elite parents)
///            every child new: not in the cache, not already pending (else redrawn,
///            up to max_attempts; then the slot stays empty)
///
/// All random draws of a generation happen before it is handed out, and ranking
/// uses a total order, so the result depends only on options.seed and the
/// scores, never on threads or on the order evaluations finish in. A candidate
/// is never evaluated twice. Not thread-safe: drive one object from one thread
/// (the fitness may use any number of threads).
class evolutionary_search {
 public:
  /// Starts a search: validates space and options, draws generation 0 from the
  /// seeds (see make_seeds). Throws longrope::error ("longrope.search") on
  /// invalid options, no seeds, or an invalid seed candidate.
  /// O(P * pairs * max_attempts) worst case.
  evolutionary_search(const search_space& space, const search_options& options, const std::vector<candidate>& seeds);

  /// Convenience: seeds from make_seeds(space, target, seeds).
  evolutionary_search(const search_space& space, const search_options& options, const search_target& target,
                      const search_seeds& seeds = {});

  /// Resumes from a checkpoint (validated: every candidate must be valid in its
  /// space). Continuing gives exactly the result of the uninterrupted search.
  /// Throws longrope::error ("longrope.search") on an inconsistent checkpoint.
  explicit evolutionary_search(const search_checkpoint& checkpoint);

  /// The candidates to score now (empty once done()). Calling ask() again
  /// before tell() returns the same candidates.
  const std::vector<candidate>& ask() const noexcept { return st_.pending; }
  /// ask() converted to factor vectors for a fitness function.
  std::vector<search_point> ask_points() const;

  /// Scores for ask(), in order. NaN counts as +inf. Ranks, checks the
  /// stopping rules and draws the next generation. Throws longrope::error
  /// ("longrope.search") on a size mismatch or when done().
  void tell(const std::vector<double>& scores);

  /// True once a stopping rule fired (see status()).
  bool done() const noexcept { return st_.status != stop_reason::running; }
  stop_reason status() const noexcept { return st_.status; }
  /// Stops the search (status cancelled). The state stays resumable: a
  /// checkpoint taken before cancel() continues normally.
  void cancel() noexcept {
    if (!done()) st_.status = stop_reason::cancelled;
  }

  /// Evaluates with f until done(); progress(cb) after every generation.
  search_result run(const batch_fitness& f, const progress_callback& cb = {});
  /// Evaluates each candidate of a generation with f on options.threads
  /// threads (the calling thread included, the others a std::thread pool
  /// that lives for this call, so thread_local state in f is set up once per
  /// thread), then as run(). Candidates are handed out dynamically, so uneven
  /// evaluation costs balance. The first exception thrown by f is rethrown
  /// once the generation's other evaluations stop.
  search_result run_parallel(const point_fitness& f, const progress_callback& cb = {});

  /// The best candidate so far with its score (precondition: one generation told).
  const scored_candidate& best() const;
  /// Current progress (as passed to the callback).
  search_progress progress() const;
  /// The result so far (complete once done()).
  search_result result() const;
  /// The complete state, for checkpoint and resume. O(cache size * pairs).
  search_checkpoint checkpoint() const;

  const search_space& space() const noexcept { return space_; }
  const search_options& options() const noexcept { return opt_; }
  /// Every evaluated candidate and its score.
  const std::map<candidate, double>& cache() const noexcept { return cache_; }

 private:
  void generate_initial(const std::vector<candidate>& seeds);
  void generate_next();
  void set_pending(std::vector<candidate> v);
  bool seen(const candidate& c, const std::set<candidate>& fresh) const {
    return cache_.count(c) != 0 || fresh.count(c) != 0;
  }
  double elapsed() const;

  search_space space_;
  search_options opt_;
  search_rng rng_;
  search_checkpoint st_;  // population, pending, counters; cache lives in cache_ (st_.cache stays empty)
  std::map<candidate, double> cache_;
  std::chrono::steady_clock::time_point start_;
};

/// Evaluates a batch with f on `threads` threads (the caller included),
/// scores[i] = f(points[i]). Rethrows the first exception after joining.
/// Used by run_parallel; public for callers composing their own loop.
std::vector<double> evaluate_parallel(const point_fitness& f, const std::vector<search_point>& points, int threads);

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

// ===========================================================================
// Implementation

namespace detail {

inline void search_fail(const std::string& what) { LONGROPE_THROW("longrope.search", what); }

inline std::size_t uz(int i) noexcept { return static_cast<std::size_t>(i); }

// Pool-adjacent-violators on grid indices: the non-decreasing sequence nearest
// v in L2, each pooled block rounded half-up to an integer (monotone, so the
// order survives rounding).
inline void isotonic_round(std::vector<int>& v) {
  struct block {
    std::int64_t sum;
    std::int64_t count;
  };
  std::vector<block> blocks;
  blocks.reserve(v.size());
  for (int x : v) {
    blocks.push_back({x, 1});
    while (blocks.size() >= 2) {
      const block& b = blocks.back();
      const block& a = blocks[blocks.size() - 2];
      if (a.sum * b.count <= b.sum * a.count) break;  // mean(a) <= mean(b): ordered
      const block merged{a.sum + b.sum, a.count + b.count};
      blocks.pop_back();
      blocks.back() = merged;
    }
  }
  std::size_t pos = 0;
  for (const block& b : blocks) {
    // sums are >= 0 (indices are clamped first), so integer division floors.
    const int r = static_cast<int>((2 * b.sum + b.count) / (2 * b.count));
    for (std::int64_t j = 0; j < b.count; ++j) v[pos++] = r;
  }
}

}  // namespace detail

inline void search_target::validate() const {
  rope.validate();
  if (original_length <= 0) detail::search_fail("target.original_length: must be > 0, got " + std::to_string(original_length));
  if (!std::isfinite(scale) || !(scale > 0.0)) {
    detail::search_fail("target.scale: must be finite and > 0, got " + std::to_string(scale));
  }
}

inline rope_config to_rope_config(const search_target& target, const search_point& p) {
  rope_config c;
  c.head_dim = target.rope.head_dim;
  c.rotary_dim = target.rope.rotary_dim;
  c.base = target.rope.base;
  c.layout = target.rope.layout;
  c.type = rope_type::longrope;
  c.longrope.short_factor = p.factors;
  c.longrope.long_factor = p.factors;
  c.longrope.original_max_position = target.original_length;
  c.max_position_embeddings = target.target_length();
  c.n_hat = p.n_hat;
  c.validate();
  return c;
}

inline search_space_config default_space_config(const search_target& target) {
  target.validate();
  search_space_config c;
  c.pairs = target.rope.pairs();
  c.lambda_min = 1.0;
  c.lambda_max = std::max(1.0, 1.25 * target.scale);
  c.step = 0.01;
  return c;
}

inline search_space::search_space(search_space_config cfg) : cfg_(std::move(cfg)) {
  using detail::search_fail;
  if (cfg_.pairs < 1) search_fail("space.pairs: must be >= 1, got " + std::to_string(cfg_.pairs));
  if (!std::isfinite(cfg_.lambda_min) || !(cfg_.lambda_min > 0.0)) {
    search_fail("space.lambda_min: must be finite and > 0, got " + std::to_string(cfg_.lambda_min));
  }
  if (!std::isfinite(cfg_.lambda_max) || cfg_.lambda_max < cfg_.lambda_min) {
    search_fail("space.lambda_max: must be finite and >= lambda_min = " + std::to_string(cfg_.lambda_min) +
                ", got " + std::to_string(cfg_.lambda_max));
  }
  if (!std::isfinite(cfg_.step) || !(cfg_.step > 0.0)) {
    search_fail("space.step: must be finite and > 0, got " + std::to_string(cfg_.step));
  }
  // A relative slack of 1e-9 keeps 1.25 * 4 = 5.0 on the grid despite rounding.
  const double points = std::floor((cfg_.lambda_max - cfg_.lambda_min) / cfg_.step + 1e-9) + 1.0;
  if (!(points <= static_cast<double>(1 << 30))) {
    search_fail("space.step: the grid would have " + std::to_string(points) + " points (max 2^30)");
  }
  grid_size_ = static_cast<int>(points);
  const double inv = 1.0 / cfg_.step;
  const double units = std::round(inv);
  const double origin = std::round(cfg_.lambda_min * units);
  if (units >= 1.0 && units <= 1e9 && std::fabs(inv - units) <= 1e-9 * units && std::fabs(origin) <= 9e15 &&
      std::fabs(cfg_.lambda_min * units - origin) <= 1e-6) {
    decimal_ = true;
    units_ = units;
    origin_units_ = static_cast<std::int64_t>(origin);
  }
  if (frozen_pairs() >= cfg_.pairs) {
    search_fail("space.frozen_factors: " + std::to_string(frozen_pairs()) +
                " frozen pairs leave nothing to search (pairs = " + std::to_string(cfg_.pairs) + ")");
  }
  for (std::size_t i = 0; i < cfg_.frozen_factors.size(); ++i) {
    const double f = cfg_.frozen_factors[i];
    const std::string name = "space.frozen_factors[" + std::to_string(i) + "]";
    if (!std::isfinite(f) || !(f > 0.0)) search_fail(name + ": must be finite and > 0, got " + std::to_string(f));
    if (i > 0 && f < cfg_.frozen_factors[i - 1]) search_fail(name + ": frozen factors must be non-decreasing");
  }
  if (!cfg_.frozen_factors.empty()) {
    const double last = cfg_.frozen_factors.back();
    if (last > value(max_index()) + 1e-12) {
      search_fail("space.frozen_factors: last frozen factor " + std::to_string(last) + " exceeds lambda_max " +
                  std::to_string(value(max_index())));
    }
    // Clamped in double first: a frozen factor far below lambda_min must not overflow the cast.
    int k = static_cast<int>(std::clamp(std::floor((last - cfg_.lambda_min) / cfg_.step), 0.0,
                                        static_cast<double>(max_index())));
    while (k < max_index() && value(k) < last - 1e-12) ++k;
    min_index_ = k;
  }
  if (cfg_.search_n_hat) {
    if (cfg_.n_hat_values.empty()) search_fail("space.n_hat_values: empty (use search_n_hat = false to fix n_hat at 0)");
    for (std::size_t i = 0; i < cfg_.n_hat_values.size(); ++i) {
      if (cfg_.n_hat_values[i] < 0) search_fail("space.n_hat_values[" + std::to_string(i) + "]: must be >= 0");
      if (i > 0 && cfg_.n_hat_values[i] <= cfg_.n_hat_values[i - 1]) {
        search_fail("space.n_hat_values[" + std::to_string(i) + "]: values must be strictly ascending");
      }
    }
    n_hat_ = cfg_.n_hat_values;
  } else {
    n_hat_ = {0};
  }
}

inline int search_space::nearest_index(double v) const noexcept {
  const double k = std::round((v - cfg_.lambda_min) / cfg_.step);
  if (!(k > 0.0)) return 0;  // also NaN
  if (k >= static_cast<double>(max_index())) return max_index();
  return static_cast<int>(k);
}

inline int search_space::nearest_n_hat_index(std::int64_t n) const noexcept {
  int best = 0;
  for (int i = 1; i < static_cast<int>(n_hat_.size()); ++i) {
    const auto d = [n](std::int64_t x) { return x > n ? x - n : n - x; };
    if (d(n_hat_[detail::uz(i)]) < d(n_hat_[detail::uz(best)])) best = i;
  }
  return best;
}

inline bool search_space::is_valid(const candidate& c) const noexcept {
  if (static_cast<int>(c.lambda_index.size()) != free_pairs()) return false;
  if (c.n_hat_index < 0 || c.n_hat_index >= static_cast<int>(n_hat_.size())) return false;
  int prev = min_index_;
  for (int k : c.lambda_index) {
    if (k < prev || k > max_index()) return false;
    prev = k;
  }
  return true;
}

inline void search_space::check(const candidate& c, const char* what) const {
  const std::string w = what;
  if (static_cast<int>(c.lambda_index.size()) != free_pairs()) {
    LONGROPE_THROW("longrope.argument", w + ": expected " + std::to_string(free_pairs()) + " grid indices, got " +
                                            std::to_string(c.lambda_index.size()));
  }
  if (c.n_hat_index < 0 || c.n_hat_index >= static_cast<int>(n_hat_.size())) {
    LONGROPE_THROW("longrope.argument", w + ": n_hat_index " + std::to_string(c.n_hat_index) + " outside [0, " +
                                            std::to_string(n_hat_.size()) + ")");
  }
  int prev = min_index_;
  for (std::size_t i = 0; i < c.lambda_index.size(); ++i) {
    const int k = c.lambda_index[i];
    if (k < min_index_ || k > max_index()) {
      LONGROPE_THROW("longrope.argument", w + ": lambda_index[" + std::to_string(i) + "] = " + std::to_string(k) +
                                              " outside the grid [" + std::to_string(min_index_) + ", " +
                                              std::to_string(max_index()) + "]");
    }
    if (k < prev) {
      LONGROPE_THROW("longrope.argument", w + ": lambda_index[" + std::to_string(i) +
                                              "] breaks the constraint lambda_i <= lambda_{i+1}");
    }
    prev = k;
  }
}

inline search_point search_space::point(const candidate& c) const {
  LONGROPE_ASSERT(is_valid(c));
  search_point p;
  p.factors.reserve(detail::uz(cfg_.pairs));
  p.factors.insert(p.factors.end(), cfg_.frozen_factors.begin(), cfg_.frozen_factors.end());
  for (int k : c.lambda_index) p.factors.push_back(value(k));
  p.n_hat = n_hat_[detail::uz(c.n_hat_index)];
  return p;
}

inline void repair(const search_space& space, candidate& c) {
  const int m = space.free_pairs();
  if (static_cast<int>(c.lambda_index.size()) != m) {
    const int fill = c.lambda_index.empty() ? space.min_index() : c.lambda_index.back();
    c.lambda_index.resize(detail::uz(m), fill);
  }
  for (int& k : c.lambda_index) k = std::clamp(k, space.min_index(), space.max_index());
  detail::isotonic_round(c.lambda_index);
  c.n_hat_index = std::clamp(c.n_hat_index, 0, static_cast<int>(space.n_hat_values().size()) - 1);
}

inline candidate snap(const search_space& space, const std::vector<double>& factors, std::int64_t n_hat) {
  if (static_cast<int>(factors.size()) != space.pairs()) {
    LONGROPE_THROW("longrope.argument", "snap: expected " + std::to_string(space.pairs()) +
                                            " factors (rotary_dim / 2), got " + std::to_string(factors.size()));
  }
  candidate c;
  c.lambda_index.reserve(detail::uz(space.free_pairs()));
  for (std::size_t i = 0; i < factors.size(); ++i) {
    if (!std::isfinite(factors[i])) {
      LONGROPE_THROW("longrope.argument", "snap: factors[" + std::to_string(i) + "] is not finite");
    }
    if (static_cast<int>(i) >= space.frozen_pairs()) c.lambda_index.push_back(space.nearest_index(factors[i]));
  }
  c.n_hat_index = space.nearest_n_hat_index(n_hat);
  repair(space, c);
  return c;
}

template <class URBG>
candidate mutate(const search_space& space, const candidate& parent, double p, URBG& g, int radius,
                 mutation_mode mode) {
  space.check(parent, "mutate: parent");
  candidate c = parent;
  const int m = space.free_pairs();
  const bool upward = (random_u64(g) >> 63) != 0;
  auto& x = c.lambda_index;
  for (int step = 0; step < m; ++step) {
    const int i = upward ? step : m - 1 - step;
    if (!bernoulli(g, p)) continue;
    const int cur = x[detail::uz(i)];
    // The window the radius allows around the current value (whole grid for 0).
    const int wlo = radius > 0 ? std::max(space.min_index(), cur - std::min(cur, radius)) : space.min_index();
    const int whi = radius > 0 ? cur + std::min(space.max_index() - cur, radius) : space.max_index();
    if (mode == mutation_mode::bounded) {
      const int lo = std::max(wlo, i > 0 ? x[detail::uz(i - 1)] : space.min_index());
      const int hi = std::min(whi, i + 1 < m ? x[detail::uz(i + 1)] : space.max_index());
      x[detail::uz(i)] = lo + static_cast<int>(uniform_index(g, static_cast<std::uint64_t>(hi - lo) + 1));
    } else {
      const int v = wlo + static_cast<int>(uniform_index(g, static_cast<std::uint64_t>(whi - wlo) + 1));
      x[detail::uz(i)] = v;
      for (int j = i + 1; j < m && x[detail::uz(j)] < v; ++j) x[detail::uz(j)] = v;
      for (int j = i - 1; j >= 0 && x[detail::uz(j)] > v; --j) x[detail::uz(j)] = v;
    }
  }
  return c;
}

template <class URBG>
void mutate_n_hat(const search_space& space, candidate& c, double p, URBG& g) {
  const auto n = static_cast<std::uint64_t>(space.n_hat_values().size());
  if (c.n_hat_index < 0 || static_cast<std::uint64_t>(c.n_hat_index) >= n) {
    LONGROPE_THROW("longrope.argument", "mutate_n_hat: n_hat_index " + std::to_string(c.n_hat_index) + " outside the set");
  }
  if (n <= 1 || !bernoulli(g, p)) return;
  // Uniform over the other n - 1 values.
  const auto r = static_cast<int>(uniform_index(g, n - 1));
  c.n_hat_index = r >= c.n_hat_index ? r + 1 : r;
}

template <class URBG>
std::optional<candidate> crossover(const search_space& space, const candidate& a, const candidate& b, URBG& g,
                                   crossover_policy policy) {
  space.check(a, "crossover: parent a");
  space.check(b, "crossover: parent b");
  candidate c;
  const std::size_t m = a.lambda_index.size();
  c.lambda_index.resize(m);
  std::uint64_t bits = 0;
  int left = 0;
  auto coin = [&]() {
    if (left == 0) {
      bits = random_u64(g);
      left = 64;
    }
    const bool r = (bits & 1) != 0;
    bits >>= 1;
    --left;
    return r;
  };
  bool ordered = true;
  for (std::size_t i = 0; i < m; ++i) {
    c.lambda_index[i] = coin() ? a.lambda_index[i] : b.lambda_index[i];
    if (i > 0 && c.lambda_index[i] < c.lambda_index[i - 1]) ordered = false;
  }
  c.n_hat_index = coin() ? a.n_hat_index : b.n_hat_index;
  if (!ordered) {
    if (policy == crossover_policy::reject) return std::nullopt;
    repair(space, c);
  }
  return c;
}

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
  if (mutation != mutation_mode::bounded && mutation != mutation_mode::push) {
    search_fail("options.mutation: unknown mode");
  }
}

namespace detail {

inline bool ranked_before(const scored_candidate& a, const scored_candidate& b) noexcept {
  if (a.score != b.score) return a.score < b.score;
  return a.c < b.c;
}

inline double normalize_score(double s) noexcept { return std::isnan(s) ? std::numeric_limits<double>::infinity() : s; }

}  // namespace detail

inline evolutionary_search::evolutionary_search(const search_space& space, const search_options& options,
                                                const std::vector<candidate>& seeds)
    : space_(space), opt_(options), rng_(options.seed), start_(std::chrono::steady_clock::now()) {
  opt_.validate();
  if (seeds.empty()) detail::search_fail("evolutionary_search: no seeds");
  for (const auto& s : seeds) space_.check(s, "evolutionary_search: seed");
  st_.space = space_.config();
  st_.options = opt_;
  generate_initial(seeds);
}

inline evolutionary_search::evolutionary_search(const search_space& space, const search_options& options,
                                                const search_target& target, const search_seeds& seeds)
    : evolutionary_search(space, options, make_seeds(space, target, seeds)) {}

inline evolutionary_search::evolutionary_search(const search_checkpoint& cp)
    : space_(cp.space), opt_(cp.options), start_(std::chrono::steady_clock::now()) {
  using detail::search_fail;
  opt_.validate();
  rng_.set_state(cp.rng);
  st_ = cp;
  st_.cache.clear();
  for (const auto& e : cp.cache) {
    if (!space_.is_valid(e.c)) search_fail("checkpoint.cache: a candidate is not valid in the space");
    if (!cache_.emplace(e.c, e.score).second) search_fail("checkpoint.cache: duplicate candidate");
  }
  for (const auto& e : cp.population) {
    auto it = cache_.find(e.c);
    if (it == cache_.end()) search_fail("checkpoint.population: candidate missing from the cache");
    if (!(it->second == e.score || (std::isnan(it->second) && std::isnan(e.score)))) {
      search_fail("checkpoint.population: score differs from the cache");
    }
  }
  if (!std::is_sorted(st_.population.begin(), st_.population.end(), detail::ranked_before)) {
    search_fail("checkpoint.population: not ranked");
  }
  {
    std::set<candidate> seen;
    for (const auto& c : cp.pending) {
      if (!space_.is_valid(c)) search_fail("checkpoint.pending: a candidate is not valid in the space");
      if (cache_.count(c) != 0) search_fail("checkpoint.pending: candidate already evaluated");
      if (!seen.insert(c).second) search_fail("checkpoint.pending: duplicate candidate");
    }
  }
  if (cp.iteration < 0 || cp.evaluations < 0 || cp.stale_generations < 0) {
    search_fail("checkpoint: negative counter");
  }
  if (static_cast<std::int64_t>(cache_.size()) != cp.evaluations) {
    search_fail("checkpoint.evaluations: " + std::to_string(cp.evaluations) + " but the cache holds " +
                std::to_string(cache_.size()) + " candidates");
  }
  if (!cp.initial_done && !cp.population.empty()) search_fail("checkpoint: population before the initial generation");
  // A resumed search continues: a cancelled status (the callback asked to
  // stop) is lifted; a search stopped by a rule stays done.
  if (st_.status == stop_reason::cancelled) st_.status = stop_reason::running;
  if (st_.status == stop_reason::running && st_.pending.empty()) {
    search_fail("checkpoint: a running search must have pending candidates");
  }
}

inline double evolutionary_search::elapsed() const {
  return st_.elapsed_seconds +
         std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
}

inline void evolutionary_search::set_pending(std::vector<candidate> v) {
  if (opt_.max_evaluations > 0) {
    const std::int64_t left = opt_.max_evaluations - st_.evaluations;
    if (left <= 0) {
      v.clear();
      st_.status = stop_reason::evaluation_budget;
    } else if (static_cast<std::int64_t>(v.size()) > left) {
      v.resize(static_cast<std::size_t>(left));
    }
  }
  if (v.empty() && st_.status == stop_reason::running) st_.status = stop_reason::exhausted;
  st_.pending = std::move(v);
}

inline void evolutionary_search::generate_initial(const std::vector<candidate>& seeds) {
  std::vector<candidate> gen;
  std::set<candidate> fresh;
  for (const auto& s : seeds) {
    if (static_cast<int>(gen.size()) >= opt_.population) break;
    if (fresh.insert(s).second) gen.push_back(s);
  }
  const std::size_t n_seeds = gen.size();
  const auto target = static_cast<std::size_t>(opt_.population);
  // Fill with mutations of the seeds; max_attempts draws per empty slot.
  const std::size_t slots = target > gen.size() ? target - gen.size() : 0;
  for (std::size_t slot = 0; slot < slots; ++slot) {
    for (int attempt = 0; attempt < opt_.max_attempts; ++attempt) {
      const auto& parent = gen[static_cast<std::size_t>(uniform_index(rng_, n_seeds))];
      candidate child = mutate(space_, parent, opt_.mutation_probability, rng_, opt_.mutation_radius, opt_.mutation);
      mutate_n_hat(space_, child, opt_.n_hat_probability, rng_);
      if (fresh.insert(child).second) {
        gen.push_back(std::move(child));
        break;
      }
    }
  }
  set_pending(std::move(gen));
}

inline void evolutionary_search::generate_next() {
  const std::size_t k = std::min(static_cast<std::size_t>(opt_.top_k), st_.population.size());
  std::vector<candidate> gen;
  std::set<candidate> fresh;
  for (int j = 0; j < opt_.mutations; ++j) {
    for (int attempt = 0; attempt < opt_.max_attempts; ++attempt) {
      const auto& parent = st_.population[static_cast<std::size_t>(uniform_index(rng_, k))].c;
      candidate child = mutate(space_, parent, opt_.mutation_probability, rng_, opt_.mutation_radius, opt_.mutation);
      mutate_n_hat(space_, child, opt_.n_hat_probability, rng_);
      if (!seen(child, fresh)) {
        fresh.insert(child);
        gen.push_back(std::move(child));
        break;
      }
    }
  }
  if (k >= 2) {
    for (int j = 0; j < opt_.crossovers; ++j) {
      for (int attempt = 0; attempt < opt_.max_attempts; ++attempt) {
        const auto ia = static_cast<std::size_t>(uniform_index(rng_, k));
        auto ib = static_cast<std::size_t>(uniform_index(rng_, k - 1));
        if (ib >= ia) ++ib;  // two distinct parents
        auto child = crossover(space_, st_.population[ia].c, st_.population[ib].c, rng_, opt_.crossover);
        if (child && !seen(*child, fresh)) {
          fresh.insert(*child);
          gen.push_back(std::move(*child));
          break;
        }
      }
    }
  }
  set_pending(std::move(gen));
}

inline std::vector<search_point> evolutionary_search::ask_points() const {
  std::vector<search_point> pts;
  pts.reserve(st_.pending.size());
  for (const auto& c : st_.pending) pts.push_back(space_.point(c));
  return pts;
}

inline void evolutionary_search::tell(const std::vector<double>& scores) {
  if (done()) detail::search_fail(std::string("tell: the search is done (") + to_string(st_.status) + ")");
  if (scores.size() != st_.pending.size()) {
    detail::search_fail("tell: expected " + std::to_string(st_.pending.size()) + " scores (one per ask()), got " +
                        std::to_string(scores.size()));
  }
  const std::size_t k = std::min(static_cast<std::size_t>(opt_.top_k), st_.population.size());
  std::vector<scored_candidate> next(st_.population.begin(), st_.population.begin() + static_cast<std::ptrdiff_t>(k));
  for (std::size_t i = 0; i < scores.size(); ++i) {
    const double s = detail::normalize_score(scores[i]);
    cache_.emplace(st_.pending[i], s);
    next.push_back({std::move(st_.pending[i]), s});
  }
  st_.evaluations += static_cast<std::int64_t>(scores.size());
  st_.generation_evaluations = static_cast<std::int64_t>(scores.size());
  st_.pending.clear();
  std::sort(next.begin(), next.end(), detail::ranked_before);
  st_.population = std::move(next);

  const double best = st_.population.front().score;
  if (!st_.initial_done) {
    st_.best_score = best;
  } else {
    ++st_.iteration;
    if (best < st_.best_score - opt_.tolerance) {
      st_.best_score = best;
      st_.stale_generations = 0;
    } else {
      ++st_.stale_generations;
    }
  }
  st_.initial_done = true;
  const double now = elapsed();
  st_.elapsed_seconds = now;
  start_ = std::chrono::steady_clock::now();

  if (st_.iteration >= opt_.iterations) {
    st_.status = stop_reason::iterations;
  } else if (opt_.patience > 0 && st_.stale_generations >= opt_.patience) {
    st_.status = stop_reason::converged;
  } else if (opt_.max_evaluations > 0 && st_.evaluations >= opt_.max_evaluations) {
    st_.status = stop_reason::evaluation_budget;
  } else if (opt_.max_seconds > 0.0 && now >= opt_.max_seconds) {
    st_.status = stop_reason::time_budget;
  } else {
    generate_next();
  }
}

inline const scored_candidate& evolutionary_search::best() const {
  if (st_.population.empty()) detail::search_fail("best: no generation has been scored yet");
  return st_.population.front();
}

inline search_progress evolutionary_search::progress() const {
  search_progress p;
  p.iteration = st_.iteration;
  p.iterations = opt_.iterations;
  p.best_score = st_.population.empty() ? std::numeric_limits<double>::infinity() : st_.population.front().score;
  p.evaluations = st_.evaluations;
  p.elapsed_seconds = elapsed();
  p.status = st_.status;
  p.generation_evaluations = st_.generation_evaluations;
  if (done()) {
    p.seconds_left = 0.0;
  } else if (st_.evaluations == 0) {
    p.seconds_left = std::numeric_limits<double>::quiet_NaN();
  } else {
    // Mean time per evaluation (the fitness dominates) times the evaluations
    // the remaining generations will need at most, capped by the budgets.
    const double per_eval = st_.elapsed_seconds / static_cast<double>(st_.evaluations);
    double evals_left = static_cast<double>(opt_.iterations - st_.iteration) *
                        static_cast<double>(opt_.mutations + opt_.crossovers);
    if (opt_.max_evaluations > 0) {
      evals_left = std::min(evals_left, static_cast<double>(opt_.max_evaluations - st_.evaluations));
    }
    double left = per_eval * std::max(0.0, evals_left);
    if (opt_.max_seconds > 0.0) left = std::min(left, std::max(0.0, opt_.max_seconds - p.elapsed_seconds));
    p.seconds_left = left;
  }
  return p;
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

inline search_result evolutionary_search::result() const {
  search_result r;
  if (!st_.population.empty()) {
    r.best_candidate = st_.population.front().c;
    r.best_score = st_.population.front().score;
    r.best = space_.point(r.best_candidate);
  } else {
    r.best_score = std::numeric_limits<double>::infinity();
  }
  r.population = st_.population;
  r.evaluations = st_.evaluations;
  r.iterations = st_.iteration;
  r.elapsed_seconds = elapsed();
  r.reason = st_.status;
  return r;
}

inline search_checkpoint evolutionary_search::checkpoint() const {
  search_checkpoint cp = st_;
  cp.rng = rng_.state();
  cp.elapsed_seconds = elapsed();
  cp.cache.reserve(cache_.size());
  for (const auto& e : cache_) cp.cache.push_back({e.first, e.second});
  return cp;
}

inline search_result evolutionary_search::run(const batch_fitness& f, const progress_callback& cb) {
  if (!f) detail::search_fail("run: empty fitness function");
  while (!done()) {
    const std::vector<double> scores = f(ask_points());
    tell(scores);
    if (cb && !cb(progress())) cancel();
  }
  return result();
}

namespace detail {

inline unsigned search_threads(int threads, std::size_t work) {
  unsigned n = threads > 0 ? static_cast<unsigned>(threads) : std::max(1u, std::thread::hardware_concurrency());
  return static_cast<unsigned>(std::max<std::size_t>(1, std::min<std::size_t>(n, work)));
}

inline std::vector<double> evaluate_on(search_pool* pool, const point_fitness& f,
                                       const std::vector<search_point>& points) {
  std::vector<double> scores(points.size());
  if (pool == nullptr) {
    for (std::size_t i = 0; i < points.size(); ++i) scores[i] = f(points[i]);
  } else {
    pool->run(points.size(), [&](std::size_t i) { scores[i] = f(points[i]); });
  }
  return scores;
}

}  // namespace detail

inline std::vector<double> evaluate_parallel(const point_fitness& f, const std::vector<search_point>& points,
                                             int threads) {
  if (!f) detail::search_fail("evaluate_parallel: empty fitness function");
  const unsigned n = detail::search_threads(threads, points.size());
  if (n <= 1) return detail::evaluate_on(nullptr, f, points);
  detail::search_pool pool(n);
  return detail::evaluate_on(&pool, f, points);
}

inline search_result evolutionary_search::run_parallel(const point_fitness& f, const progress_callback& cb) {
  if (!f) detail::search_fail("run_parallel: empty fitness function");
  // One pool for the whole run: per-thread state in f is set up once.
  const unsigned n = detail::search_threads(opt_.threads, static_cast<std::size_t>(
                                                              std::max({opt_.population, opt_.mutations + opt_.crossovers, 1})));
  std::optional<detail::search_pool> pool;
  if (n > 1) pool.emplace(n);
  detail::search_pool* p = pool ? &*pool : nullptr;
  return run([&](const std::vector<search_point>& pts) { return detail::evaluate_on(p, f, pts); }, cb);
}

// ---------------------------------------------------------------------------

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
