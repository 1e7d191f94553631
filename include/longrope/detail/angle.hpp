// longrope: header-only LongRoPE positional interpolation. MIT License.
#pragma once
#if !defined(LONGROPE_INTERNAL_INCLUDE)
#error "longrope/detail/angle.hpp is internal: include <longrope/table.hpp> or <longrope/longrope.hpp>"
#endif

#include <cmath>
#include <cstdint>

namespace longrope::detail {

// 2*pi as a double-double (hi + lo, |2pi - hi - lo| < 1e-31). With fma the
// product k * hi enters the subtraction unrounded, so the reduction adds no
// error beyond one rounding of the (small) result: the reduced angle is as
// exact as the double angle p * inv_freq it starts from (error <= ulp(a)/2,
// about 1e-9 rad at a = 1.6e7).
inline constexpr double kTwoPiHi = 6.28318530717958623200e+00;   // 0x401921FB54442D18 (double(2pi))
inline constexpr double kTwoPiLo = 2.44929359829470635445e-16;   // 2pi - double(2pi)
inline constexpr double kInvTwoPi = 1.59154943091895345608e-01;

// Reduces a (|a| < 2^45) to r in [-pi, pi] with r = a - k * 2pi, k integral.
inline double reduce_two_pi(double a) noexcept {
  const double k = std::nearbyint(a * kInvTwoPi);
  // fma keeps k * kTwoPiHi exact inside the subtraction.
  double r = std::fma(-k, kTwoPiHi, a);
  r = std::fma(-k, kTwoPiLo, r);
  return r;
}

}  // namespace longrope::detail
