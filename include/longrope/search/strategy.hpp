// longrope: header-only LongRoPE positional interpolation. MIT License.
#pragma once

/// \file search/strategy.hpp
/// How evolutionary_search draws a generation: the paper's mutation +
/// crossover (the default), random search in the same monotone grid (the
/// baseline every optimizer must beat), and a Gaussian estimation-of-
/// distribution step (rank-weighted mean and covariance of the elite in
/// log-factor space, as CMA-ES's rank-mu update, sampled and snapped back to
/// the monotone grid). Part of <longrope/search.hpp>.
///
/// Every strategy is a pure function of the ranked population (surrogate:
/// also the cache of evaluated candidates, search/surrogate.hpp), the options
/// and the driver's random stream: nothing else is carried between
/// generations, so a checkpoint (population, cache, rng) resumes any strategy
/// exactly, and results never depend on the number of threads.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "operators.hpp"
#include "rng.hpp"
#include "space.hpp"

namespace longrope {

/// Which generator draws the children of a generation (search_options::strategy).
enum class search_strategy {
  /// The paper's: N1 mutations + N2 crossovers of parents from the top k.
  evolution,
  /// N1 + N2 candidates drawn uniformly: every searched pair an independent
  /// uniform grid index, sorted (so the vector is monotone), n_hat uniform.
  /// Generation 0 keeps the seeds and fills the rest the same way.
  random,
  /// N1 + N2 samples of N(m, C) in u = log(lambda): m and C the rank-weighted
  /// mean and covariance of the top k (weights ln(k + 1/2) - ln(rank), as
  /// CMA-ES's rank-mu update), C inflated by 1.5 and floored at two grid steps
  /// per pair so the search keeps moving on the grid; each sample sorted
  /// (monotone), snapped to the grid; n_hat that of an elite drawn with the
  /// same weights, mutated with n_hat_probability. A sample already seen is
  /// redrawn with a 1.5x wider spread (max_attempts times).
  gaussian,
  /// gaussian's samples pre-screened by a quadratic model of log(score)
  /// fitted to every evaluated candidate (search/surrogate.hpp): most
  /// children are the pool's predicted best, a quarter plain samples.
  surrogate,
};

/// "evolution", "random", "gaussian", "surrogate".
inline const char* to_string(search_strategy s) noexcept {
  switch (s) {
    case search_strategy::evolution: return "evolution";
    case search_strategy::random: return "random";
    case search_strategy::gaussian: return "gaussian";
    case search_strategy::surrogate: return "surrogate";
  }
  return "unknown";
}

/// Parses to_string's names. Returns false (out untouched) on another name.
inline bool parse_search_strategy(const std::string& name, search_strategy& out) noexcept {
  for (auto s : {search_strategy::evolution, search_strategy::random, search_strategy::gaussian,
                 search_strategy::surrogate}) {
    if (name == to_string(s)) {
      out = s;
      return true;
    }
  }
  return false;
}

// ---------------------------------------------------------------------------
// Implementation

namespace detail {

/// A standard normal draw (Box-Muller on two uniform_unit draws): portable,
/// unlike std::normal_distribution, so a seed gives the same search everywhere.
template <class URBG>
double normal_draw(URBG& g) {
  const double u1 = 1.0 - uniform_unit(g);  // (0, 1]
  const double u2 = uniform_unit(g);
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586476925 * u2);
}

/// A uniformly random monotone candidate: sorted independent grid indices, uniform n_hat.
template <class URBG>
candidate random_candidate(const search_space& space, URBG& g) {
  candidate c;
  const auto span = static_cast<std::uint64_t>(space.max_index() - space.min_index() + 1);
  c.lambda_index.resize(uz(space.free_pairs()));
  for (auto& k : c.lambda_index) k = space.min_index() + static_cast<int>(uniform_index(g, span));
  std::sort(c.lambda_index.begin(), c.lambda_index.end());
  c.n_hat_index = static_cast<int>(uniform_index(g, space.n_hat_values().size()));
  return c;
}

/// The elite's search distribution in u = log(lambda) (searched pairs only).
struct gaussian_model {
  int d = 0;
  std::vector<double> mean;     ///< d
  std::vector<double> chol;     ///< d x d lower-triangular Cholesky factor of the covariance, row-major
  std::vector<double> weights;  ///< one per elite member, summing to 1
};

/// Fits gaussian_model to elite (ranked best first, at least one). O(mu d^2 + d^3).
inline gaussian_model fit_gaussian(const search_space& space, const std::vector<const candidate*>& elite) {
  gaussian_model m;
  m.d = space.free_pairs();
  const auto d = uz(m.d);
  const std::size_t mu = elite.size();
  m.weights.resize(mu);
  double wsum = 0.0;
  for (std::size_t i = 0; i < mu; ++i) {
    m.weights[i] = std::log(static_cast<double>(mu) + 0.5) - std::log(static_cast<double>(i) + 1.0);
    wsum += m.weights[i];
  }
  for (auto& w : m.weights) w /= wsum;
  std::vector<double> u(mu * d);
  for (std::size_t i = 0; i < mu; ++i) {
    for (std::size_t j = 0; j < d; ++j) u[i * d + j] = std::log(space.value(elite[i]->lambda_index[j]));
  }
  m.mean.assign(d, 0.0);
  for (std::size_t i = 0; i < mu; ++i) {
    for (std::size_t j = 0; j < d; ++j) m.mean[j] += m.weights[i] * u[i * d + j];
  }
  std::vector<double> cov(d * d, 0.0);
  for (std::size_t i = 0; i < mu; ++i) {
    for (std::size_t a = 0; a < d; ++a) {
      for (std::size_t b = 0; b <= a; ++b) {
        cov[a * d + b] += m.weights[i] * (u[i * d + a] - m.mean[a]) * (u[i * d + b] - m.mean[b]);
      }
    }
  }
  const double step = space.config().step;
  for (std::size_t a = 0; a < d; ++a) {
    for (std::size_t b = 0; b <= a; ++b) cov[a * d + b] *= 1.5;
    // Floor: two grid steps at the mean, in log units.
    const double floor_sd = 2.0 * step / std::exp(m.mean[a]);
    cov[a * d + a] += floor_sd * floor_sd;
  }
  // Cholesky (the floor makes cov positive definite).
  m.chol.assign(d * d, 0.0);
  for (std::size_t a = 0; a < d; ++a) {
    for (std::size_t b = 0; b <= a; ++b) {
      double s = cov[a * d + b];
      for (std::size_t k = 0; k < b; ++k) s -= m.chol[a * d + k] * m.chol[b * d + k];
      if (a == b) {
        m.chol[a * d + a] = std::sqrt(std::max(s, 1e-300));
      } else {
        m.chol[a * d + b] = s / m.chol[b * d + b];
      }
    }
  }
  return m;
}

/// One sample of the model with its spread scaled by `widen`, snapped to the grid.
template <class URBG>
candidate sample_gaussian(const search_space& space, const gaussian_model& m,
                          const std::vector<const candidate*>& elite, double widen, double n_hat_probability,
                          URBG& g) {
  const auto d = uz(m.d);
  std::vector<double> z(d), f(uz(space.pairs()));
  for (auto& v : z) v = normal_draw(g);
  std::vector<double> lam(d);
  for (std::size_t a = 0; a < d; ++a) {
    double x = m.mean[a];
    for (std::size_t b = 0; b <= a; ++b) x += widen * m.chol[a * d + b] * z[b];
    lam[a] = std::exp(std::min(x, 700.0));
  }
  std::sort(lam.begin(), lam.end());
  const auto frozen = uz(space.frozen_pairs());
  for (std::size_t i = 0; i < frozen; ++i) f[i] = space.config().frozen_factors[i];
  for (std::size_t a = 0; a < d; ++a) f[frozen + a] = lam[a];
  // The n_hat of an elite member drawn with the rank weights.
  double r = uniform_unit(g), acc = 0.0;
  std::size_t pick = elite.size() - 1;
  for (std::size_t i = 0; i < elite.size(); ++i) {
    acc += m.weights[i];
    if (r < acc) {
      pick = i;
      break;
    }
  }
  candidate c = snap(space, f, 0);
  c.n_hat_index = elite[pick]->n_hat_index;
  mutate_n_hat(space, c, n_hat_probability, g);
  return c;
}

/// The children of a random or gaussian generation: `children` new
/// candidates (not seen(c), not twice), each drawn up to max_attempts times
/// (gaussian: 1.5x wider after each failed draw); a slot whose draws all fail
/// stays empty. elite: the top k, ranked (gaussian needs at least one).
template <class URBG, class Seen>
std::vector<candidate> sampled_generation(const search_space& space, search_strategy strategy,
                                          const std::vector<const candidate*>& elite, int children, int max_attempts,
                                          double n_hat_probability, URBG& g, const Seen& seen) {
  std::vector<candidate> gen;
  std::vector<candidate> fresh;  // sorted
  gaussian_model model;
  const bool gaussian = strategy == search_strategy::gaussian && !elite.empty();
  if (gaussian) model = fit_gaussian(space, elite);
  for (int j = 0; j < children; ++j) {
    double widen = 1.0;
    for (int attempt = 0; attempt < max_attempts; ++attempt) {
      candidate child = gaussian ? sample_gaussian(space, model, elite, widen, n_hat_probability, g)
                                 : random_candidate(space, g);
      const auto pos = std::lower_bound(fresh.begin(), fresh.end(), child);
      if (!seen(child) && (pos == fresh.end() || *pos != child)) {
        fresh.insert(pos, child);
        gen.push_back(std::move(child));
        break;
      }
      widen *= 1.5;
    }
  }
  return gen;
}

}  // namespace detail

}  // namespace longrope
