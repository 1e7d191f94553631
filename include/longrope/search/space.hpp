// longrope: header-only LongRoPE positional interpolation. MIT License.
#pragma once

/// \file search/space.hpp
/// The search space: what is extended (search_target), the grid of factor
/// values lambda_min + k * step, the monotone constraint, the n_hat value set
/// and the frozen (LongRoPE2) pairs; candidates as integer grid indices, and
/// the rope_config a fitness evaluates. Part of <longrope/search.hpp>.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "../config.hpp"
#include "../error.hpp"
#include "../frequencies.hpp"

namespace longrope {

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
  /// LongRoPE2 (search/longrope2.hpp): the k = ntk_derived_pairs lower pairs
  /// are neither searched nor fixed but derived from the anchor pair k (the
  /// first searched pair) by the NTK rule lambda_i = lambda_k^(i / k), i < k,
  /// whenever a candidate becomes a factor vector (point()), so they follow
  /// every mutation and crossover. Needs lambda_min >= 1 (then the derived
  /// pairs rise from 1 to below lambda_k: the whole vector stays monotone).
  /// 0 (default): off. Exclusive with frozen_factors.
  int ntk_derived_pairs = 0;
  /// false drops the constraint lambda_i <= lambda_{i+1} (the per-pair mscale
  /// stage of LongRoPE2 searches an unordered vector on the same machinery).
  bool monotone = true;
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
  /// Number of pairs not searched (frozen or NTK-derived: the critical pair
  /// index), 0 for the paper's space.
  int frozen_pairs() const noexcept {
    return static_cast<int>(cfg_.frozen_factors.size()) + cfg_.ntk_derived_pairs;
  }
  /// True when the pairs below frozen_pairs() are derived from the anchor (LongRoPE2).
  bool ntk_derived() const noexcept { return cfg_.ntk_derived_pairs > 0; }
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
  /// non-decreasing (when monotone), and an n_hat index inside the set. O(pairs), noexcept.
  bool is_valid(const candidate& c) const noexcept;
  /// Throws longrope::error ("longrope.argument") naming the first violation of is_valid.
  void check(const candidate& c, const char* what) const;

  /// The full factor vector (frozen or NTK-derived pairs, then grid values) and n_hat of c.
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


// ---------------------------------------------------------------------------
// Implementation

namespace detail {

inline void search_fail(const std::string& what) { LONGROPE_THROW("longrope.search", what); }

inline std::size_t uz(int i) noexcept { return static_cast<std::size_t>(i); }

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
  if (cfg_.ntk_derived_pairs < 0) {
    search_fail("space.ntk_derived_pairs: must be >= 0, got " + std::to_string(cfg_.ntk_derived_pairs));
  }
  if (cfg_.ntk_derived_pairs > 0 && !cfg_.frozen_factors.empty()) {
    search_fail("space.ntk_derived_pairs: cannot be combined with frozen_factors");
  }
  if (cfg_.ntk_derived_pairs > 0 && cfg_.lambda_min < 1.0) {
    search_fail("space.ntk_derived_pairs: needs lambda_min >= 1 (the derived pairs must rise), got lambda_min " +
                std::to_string(cfg_.lambda_min));
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
    if (k < min_index_ || k > max_index() || (cfg_.monotone && k < prev)) return false;
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
    if (cfg_.monotone && k < prev) {
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
  if (cfg_.ntk_derived_pairs > 0) {
    // LongRoPE2: lambda_i = lambda_k^(i/k) below the anchor k (lambda_0 = 1).
    const double anchor = value(c.lambda_index.front());
    const double k = static_cast<double>(cfg_.ntk_derived_pairs);
    for (int i = 0; i < cfg_.ntk_derived_pairs; ++i) p.factors.push_back(std::pow(anchor, static_cast<double>(i) / k));
  }
  for (int k : c.lambda_index) p.factors.push_back(value(k));
  p.n_hat = n_hat_[detail::uz(c.n_hat_index)];
  return p;
}

}  // namespace longrope
