// A deterministic, nearly free fitness for testing coordinators (`longrope
// evaluate --synthetic`, the evaluator tests and benchmark): a smooth bowl
// whose optimum factors grow from 1 to the scale s = L / L0 across the pairs,
// plus a small n_hat term (optimum n_hat = 4). Depends only on the request's
// numbers, so every transport must give the same search bit for bit.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <vector>

namespace longrope_cli {

inline double synthetic_fitness(const std::vector<double>& factors, std::int64_t n_hat, std::int64_t original_length,
                                std::int64_t target_length) {
  const double s = static_cast<double>(target_length) / static_cast<double>(original_length);
  const double n = static_cast<double>(factors.size());
  double loss = 0.0;
  for (std::size_t i = 0; i < factors.size(); ++i) {
    const double t = n > 1 ? static_cast<double>(i) / (n - 1.0) : 0.0;
    const double want = 1.0 + (s - 1.0) * t * t;
    const double d = std::log(factors[i] / want);
    loss += d * d;
  }
  return std::exp(1.0 + loss) + 1e-3 * std::fabs(static_cast<double>(n_hat) - 4.0);
}

}  // namespace longrope_cli
