// longrope: header-only LongRoPE positional interpolation. MIT License.
#pragma once

/// \file search/operators.hpp
/// The genetic operators of the paper (mutate, mutate_n_hat, crossover) and
/// the projections onto the space (repair, snap), templated on any
/// UniformRandomBitGenerator. Part of <longrope/search.hpp>.

#include <cstdint>
#include <optional>
#include <vector>

#include "rng.hpp"
#include "space.hpp"

namespace longrope {

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


// ---------------------------------------------------------------------------
// Implementation

namespace detail {

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

inline void repair(const search_space& space, candidate& c) {
  const int m = space.free_pairs();
  if (static_cast<int>(c.lambda_index.size()) != m) {
    const int fill = c.lambda_index.empty() ? space.min_index() : c.lambda_index.back();
    c.lambda_index.resize(detail::uz(m), fill);
  }
  for (int& k : c.lambda_index) k = std::clamp(k, space.min_index(), space.max_index());
  if (space.config().monotone) detail::isotonic_round(c.lambda_index);
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
    if (!space.config().monotone) {
      // No order to keep: uniform in the window.
      x[detail::uz(i)] = wlo + static_cast<int>(uniform_index(g, static_cast<std::uint64_t>(whi - wlo) + 1));
    } else if (mode == mutation_mode::bounded) {
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
    if (i > 0 && c.lambda_index[i] < c.lambda_index[i - 1] && space.config().monotone) ordered = false;
  }
  c.n_hat_index = coin() ? a.n_hat_index : b.n_hat_index;
  if (!ordered) {
    if (policy == crossover_policy::reject) return std::nullopt;
    repair(space, c);
  }
  return c;
}

}  // namespace longrope
