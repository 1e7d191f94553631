// longrope: header-only LongRoPE positional interpolation. MIT License.
#pragma once

/// \file search/surrogate.hpp
/// The surrogate strategy (search_strategy::surrogate): a Gaussian
/// estimation-of-distribution step (strategy.hpp's gaussian) whose samples are
/// pre-screened by a quadratic model of log(score) fitted to the evaluated
/// candidates, as in surrogate-assisted CMA-ES (lq-CMA-ES). Each generation:
///
///   1. fit q(x) = a + b.x + x'Hx / 2 to log(score) (a perplexity's log is the
///      mean NLL; the score itself if one is <= 0) by weighted ridge least
///      squares on the m best evaluated candidates (m = min(#cache, 2 * p), p
///      the number of coefficients, rank r weighted 1 / (1 + r / p)); x = the
///      log-factors of the searched pairs and, when n_hat is searched, n_hat's
///      index over (#values - 1), all centred on the best candidate;
///   2. draw a pool of 32 * children samples of the elite's Gaussian (half at
///      its spread, half at twice it: the model may see beyond the elite);
///   3. the children: the model's minimiser in the factors (n_hat the best's),
///      clipped to the fitted points' box (when its Hessian there is positive definite), then the pool's lowest q up to
///      children - max(1, children / 4), the rest plain samples at the elite's
///      spread (exploration keeps the model honest where it has no data).
///      Every child new, as for gaussian.
///
/// With fewer evaluated candidates than coefficients, or a fit that fails, the
/// generation is the gaussian one. Deterministic: the cache is ordered, the
/// pool comes from the driver's random stream, so a checkpoint (population,
/// cache, rng) resumes it exactly. Per generation O(m p^2 + p^3 + pool * p),
/// p = coefficients (21 for 4 pairs + n_hat): microseconds next to one fitness
/// evaluation. Part of <longrope/search.hpp>.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <map>
#include <utility>
#include <vector>

#include "space.hpp"
#include "strategy.hpp"

namespace longrope {
namespace detail {

/// A quadratic model in the surrogate's features.
struct quadratic_model {
  std::size_t dim = 0;
  std::vector<double> center;  ///< dim: features of the best candidate
  std::vector<double> coef;    ///< 1 + dim + dim (dim + 1) / 2: constant, linear, upper-triangle quadratic
  std::vector<double> lo, hi;  ///< dim: the fitted points' box (the trust region of the minimiser)
};

/// The surrogate's features of c: log(lambda) of the searched pairs, then
/// n_hat_index / (#values - 1) when n_hat has more than one value.
inline std::vector<double> surrogate_features(const search_space& space, const candidate& c) {
  std::vector<double> x;
  x.reserve(c.lambda_index.size() + 1);
  for (int k : c.lambda_index) x.push_back(std::log(space.value(k)));
  const std::size_t nv = space.n_hat_values().size();
  if (nv > 1) x.push_back(static_cast<double>(c.n_hat_index) / static_cast<double>(nv - 1));
  return x;
}

inline void quadratic_basis(const std::vector<double>& x, const std::vector<double>& center, std::vector<double>& phi) {
  const std::size_t d = x.size();
  phi.clear();
  phi.push_back(1.0);
  for (std::size_t i = 0; i < d; ++i) phi.push_back(x[i] - center[i]);
  for (std::size_t i = 0; i < d; ++i) {
    for (std::size_t j = i; j < d; ++j) phi.push_back((x[i] - center[i]) * (x[j] - center[j]));
  }
}

inline double predict(const quadratic_model& m, const std::vector<double>& x, std::vector<double>& phi) {
  quadratic_basis(x, m.center, phi);
  double y = 0.0;
  for (std::size_t i = 0; i < phi.size(); ++i) y += m.coef[i] * phi[i];
  return y;
}

/// Cholesky solve of the dense symmetric n x n system a x = b (a overwritten
/// by its factor). False when a is not positive definite.
inline bool cholesky_solve(std::vector<double>& a, std::vector<double>& b, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) {
    for (std::size_t j = 0; j <= i; ++j) {
      double s = a[i * n + j];
      for (std::size_t k = 0; k < j; ++k) s -= a[i * n + k] * a[j * n + k];
      if (i == j) {
        if (!(s > 0.0)) return false;
        a[i * n + i] = std::sqrt(s);
      } else {
        a[i * n + j] = s / a[j * n + j];
      }
    }
  }
  for (std::size_t i = 0; i < n; ++i) {
    for (std::size_t k = 0; k < i; ++k) b[i] -= a[i * n + k] * b[k];
    b[i] /= a[i * n + i];
  }
  for (std::size_t i = n; i-- > 0;) {
    for (std::size_t k = i + 1; k < n; ++k) b[i] -= a[k * n + i] * b[k];
    b[i] /= a[i * n + i];
  }
  return true;
}

/// Ridge least squares of log(score) (the score itself when a score is <= 0)
/// on the quadratic basis over the m = 2 p best finite-score entries of cache
/// (rank r weighted 1 / (1 + r / p)). Returns false (m untouched) with too few
/// points or a singular system.
inline bool fit_quadratic(const search_space& space, const std::map<candidate, double>& cache, quadratic_model& out) {
  std::vector<std::pair<double, const candidate*>> pts;
  bool positive = true;
  for (const auto& e : cache) {
    if (std::isfinite(e.second)) {
      pts.emplace_back(e.second, &e.first);
      positive = positive && e.second > 0.0;
    }
  }
  if (pts.empty()) return false;
  const std::size_t d = surrogate_features(space, *pts.front().second).size();
  const std::size_t p = 1 + d + d * (d + 1) / 2;
  if (pts.size() < p) return false;
  const std::size_t m = std::min(pts.size(), 2 * p);
  // Total order (score, candidate): the same fit whatever the map's history.
  std::partial_sort(pts.begin(), pts.begin() + static_cast<std::ptrdiff_t>(m), pts.end(),
                    [](const auto& a, const auto& b) { return a.first != b.first ? a.first < b.first : *a.second < *b.second; });
  quadratic_model q;
  q.dim = d;
  q.center = surrogate_features(space, *pts.front().second);
  std::vector<double> ata(p * p, 0.0), aty(p, 0.0), phi;
  q.lo = q.hi = q.center;
  for (std::size_t r = 0; r < m; ++r) {
    const auto x = surrogate_features(space, *pts[r].second);
    for (std::size_t i = 0; i < d; ++i) q.lo[i] = std::min(q.lo[i], x[i]), q.hi[i] = std::max(q.hi[i], x[i]);
    quadratic_basis(x, q.center, phi);
    const double y = positive ? std::log(pts[r].first) : pts[r].first;
    for (std::size_t i = 0; i < p; ++i) {
      const double w = 1.0 / (1.0 + static_cast<double>(r) / static_cast<double>(p));  // rank r: nearer the best counts more
      aty[i] += w * phi[i] * y;
      for (std::size_t j = 0; j <= i; ++j) ata[i * p + j] += w * phi[i] * phi[j];
    }
  }
  // Ridge relative to the mean diagonal (keeps an under-determined direction at 0).
  double tr = 0.0;
  for (std::size_t i = 0; i < p; ++i) tr += ata[i * p + i];
  const double ridge = 1e-6 * tr / static_cast<double>(p) + 1e-12;
  for (std::size_t i = 0; i < p; ++i) ata[i * p + i] += ridge;
  if (!cholesky_solve(ata, aty, p)) return false;
  q.coef = std::move(aty);
  for (double c : q.coef) {
    if (!std::isfinite(c)) return false;
  }
  out = std::move(q);
  return true;
}

/// The model's minimiser over the factors (n_hat the best candidate's),
/// clipped to the fitted points' box, as a candidate (factors sorted and
/// snapped to the grid). False when the model's Hessian in the factors is not
/// positive definite (no minimum).
inline bool quadratic_minimiser(const search_space& space, const quadratic_model& q, candidate& out) {
  // Over the factors only, n_hat at the best candidate's: n_hat's curvature
  // is small and noisy and would often make the Hessian indefinite.
  const std::size_t d = q.dim;
  const auto pairs = static_cast<std::size_t>(space.free_pairs());
  std::vector<double> h(pairs * pairs, 0.0), g(pairs);
  std::size_t k = 1 + d;
  for (std::size_t i = 0; i < d; ++i) {
    if (i < pairs) g[i] = -q.coef[1 + i];
    for (std::size_t j = i; j < d; ++j, ++k) {
      if (i >= pairs || j >= pairs) continue;
      if (i == j) {
        h[i * pairs + i] = 2.0 * q.coef[k];
      } else {
        h[i * pairs + j] = h[j * pairs + i] = q.coef[k];
      }
    }
  }
  if (!cholesky_solve(h, g, pairs)) return false;
  std::vector<double> lam(pairs);
  for (std::size_t i = 0; i < pairs; ++i) lam[i] = std::exp(std::clamp(q.center[i] + g[i], q.lo[i], q.hi[i]));
  std::sort(lam.begin(), lam.end());
  std::vector<double> f(uz(space.pairs()));
  const auto frozen = uz(space.frozen_pairs());
  for (std::size_t i = 0; i < frozen; ++i) f[i] = space.config().frozen_factors[i];
  for (std::size_t i = 0; i < pairs; ++i) f[frozen + i] = lam[i];
  out = snap(space, f, 0);
  const std::size_t nv = space.n_hat_values().size();
  if (d > pairs) {
    out.n_hat_index = std::clamp(static_cast<int>(std::lround(q.center[pairs] * static_cast<double>(nv - 1))), 0,
                                 static_cast<int>(nv) - 1);
  }
  return true;
}

/// The children of a surrogate generation (see the file comment). elite: the
/// top k, ranked (at least one); cache: every evaluated candidate.
template <class URBG, class Seen>
std::vector<candidate> surrogate_generation(const search_space& space, const std::vector<const candidate*>& elite,
                                            const std::map<candidate, double>& cache, int children, int max_attempts,
                                            double n_hat_probability, URBG& g, const Seen& seen) {
  quadratic_model q;
  if (elite.empty() || children < 2 || !fit_quadratic(space, cache, q)) {
    return sampled_generation(space, search_strategy::gaussian, elite, children, max_attempts, n_hat_probability, g,
                              seen);
  }
  const gaussian_model model = fit_gaussian(space, elite);
  const int explore = std::max(1, children / 4);
  const int screened = children - explore;
  const int pool_size = 32 * children;
  struct entry {
    double y;
    int order;
    candidate c;
  };
  std::vector<entry> pool;
  std::vector<candidate> fresh;  // sorted: the pool's distinct unseen candidates
  std::vector<double> phi;
  for (int i = 0; i < pool_size; ++i) {
    const double widen = i % 2 == 0 ? 1.0 : 2.0;
    candidate c = sample_gaussian(space, model, elite, widen, n_hat_probability, g);
    const auto pos = std::lower_bound(fresh.begin(), fresh.end(), c);
    if (seen(c) || (pos != fresh.end() && *pos == c)) continue;
    fresh.insert(pos, c);
    const double y = predict(q, surrogate_features(space, c), phi);
    pool.push_back({std::isfinite(y) ? y : std::numeric_limits<double>::infinity(), i, std::move(c)});
  }
  std::vector<std::size_t> by_y(pool.size());
  for (std::size_t i = 0; i < by_y.size(); ++i) by_y[i] = i;
  std::stable_sort(by_y.begin(), by_y.end(), [&](std::size_t a, std::size_t b) { return pool[a].y < pool[b].y; });
  std::vector<char> taken(pool.size(), 0);
  std::vector<candidate> gen;
  candidate star;
  if (quadratic_minimiser(space, q, star) && !seen(star)) {
    const auto pos = std::lower_bound(fresh.begin(), fresh.end(), star);
    if (pos != fresh.end() && *pos == star) {
      for (std::size_t i = 0; i < pool.size(); ++i) {
        if (pool[i].c == star) taken[i] = 1;
      }
    }
    gen.push_back(std::move(star));
  }
  for (std::size_t r = 0; r < by_y.size() && static_cast<int>(gen.size()) < screened; ++r) {
    if (taken[by_y[r]]) continue;
    taken[by_y[r]] = 1;
    gen.push_back(pool[by_y[r]].c);
  }
  // Exploration: the pool's first unchosen samples drawn at the elite's spread.
  for (std::size_t i = 0; i < pool.size() && static_cast<int>(gen.size()) < children; ++i) {
    if (!taken[i] && pool[i].order % 2 == 0) {
      taken[i] = 1;
      gen.push_back(pool[i].c);
    }
  }
  for (std::size_t i = 0; i < pool.size() && static_cast<int>(gen.size()) < children; ++i) {
    if (!taken[i]) {
      taken[i] = 1;
      gen.push_back(pool[i].c);
    }
  }
  if (gen.empty()) {  // every pool sample seen: the gaussian fallback widens its draws
    return sampled_generation(space, search_strategy::gaussian, elite, children, max_attempts, n_hat_probability, g,
                              seen);
  }
  return gen;
}

}  // namespace detail
}  // namespace longrope
