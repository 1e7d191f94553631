// longrope: header-only LongRoPE positional interpolation. MIT License.
#pragma once
#if !defined(LONGROPE_INTERNAL_INCLUDE)
#error "longrope/detail/pair_mscale.hpp is internal: include <longrope/table.hpp> or <longrope/rotate.hpp>"
#endif

// LongRoPE2's per-pair mscale on the vector paths. The vector kernels
// (sincos_scaled, fill_range_scaled) take one scalar amplitude; rather than
// give every ISA kernel a per-pair amplitude, the driver calls them with the
// scalar attention factor and then multiplies pair i by m_i here, once per
// token (per table row), before any head is rotated. Cost: one float multiply
// per pair per token, nothing when the config has no pair_mscale. Error: the
// kernel's bound scaled by m_i plus one more float rounding, < 2.5e-7 |att m_i|
// (tests/test_longrope2.cpp, against a float64 reference); all-ones m gives the
// unchanged bits (x * 1.0f == x).

#include <cstddef>

#include "../frequencies.hpp"

namespace longrope::detail {

/// c[i] *= m_i, s[i] *= m_i for i < pairs() when f has a pair_mscale; no-op otherwise.
inline void apply_pair_mscale(const rope_frequencies& f, float* c, float* s) noexcept {
  if (!f.has_pair_mscale()) return;
  const std::vector<double>& m = f.config().pair_mscale;
  const int n = f.pairs();
  for (int i = 0; i < n; ++i) {
    const float k = static_cast<float>(m[static_cast<std::size_t>(i)]);
    c[i] *= k;
    s[i] *= k;
  }
}

}  // namespace longrope::detail
