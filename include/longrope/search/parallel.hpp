// longrope: header-only LongRoPE positional interpolation. MIT License.
#pragma once

/// \file search/parallel.hpp
/// Evaluating a batch of candidates on several threads (the pool that
/// evolutionary_search::run_parallel keeps for a whole run).
/// Part of <longrope/search.hpp>.

#include <algorithm>
#include <cstddef>
#include <thread>
#include <vector>

#include "options.hpp"

#define LONGROPE_INTERNAL_INCLUDE
#include "../detail/search_pool.hpp"
#undef LONGROPE_INTERNAL_INCLUDE

namespace longrope {

/// Evaluates a batch with f on `threads` threads (the caller included),
/// scores[i] = f(points[i]). Rethrows the first exception after joining.
/// Used by run_parallel; public for callers composing their own loop.
std::vector<double> evaluate_parallel(const point_fitness& f, const std::vector<search_point>& points, int threads);

// ---------------------------------------------------------------------------
// Implementation

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

}  // namespace longrope
