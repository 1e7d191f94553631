// longrope: header-only LongRoPE positional interpolation. MIT License.
#pragma once
#if !defined(LONGROPE_INTERNAL_INCLUDE)
#error "longrope/detail/rotate_scalar.hpp is internal: include <longrope/rotate.hpp> or <longrope/longrope.hpp>"
#endif

// The scalar reference of the rotation: per-token coefficients and the per-head
// rotation, written as plainly as possible. The vector kernels in
// detail/rotate_simd.hpp must match these (tests/test_rotate_simd.cpp).

#include <cmath>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include <Eigen/Core>

#include "../config.hpp"
#include "../frequencies.hpp"
#include "../view.hpp"
#include "angle.hpp"

namespace longrope::detail {

/// Input and output of one rotated tensor (the same view when in place).
template <class T>
struct io_pair {
  heads_view<const T> in;
  heads_view<T> out;
};

/// The table a rotation reads cos/sin rows from (float, Eigen::half or
/// Eigen::bfloat16 entries).
template <class TT>
struct table_ref_t {
  matrix_view<const TT> cos;
  matrix_view<const TT> sin;
  std::int64_t first_position = 0;
};
using table_ref = table_ref_t<float>;

template <class TT>
inline constexpr bool is_table_type_v =
    std::is_same_v<TT, float> || std::is_same_v<TT, Eigen::half> || std::is_same_v<TT, Eigen::bfloat16>;

/// Scalar widening of a 16-bit (or float) table row to float.
template <class TT>
inline void widen_row_scalar(const TT* in, float* out, int n) noexcept {
  for (int i = 0; i < n; ++i) out[i] = static_cast<float>(in[i]);
}

/// Largest number of rotary pairs the kernels accept (per-token scratch lives
/// on the stack: 4 arrays of 2 * 512 floats = 16 KiB, or 32 KiB for double).
inline constexpr int kMaxRotaryPairs = 512;

/// Computation type: double storage computes in double, everything else in float.
template <class T>
using compute_t = std::conditional_t<std::is_same_v<T, double>, double, float>;

template <class T>
inline constexpr bool is_storage_type_v =
    std::is_same_v<T, float> || std::is_same_v<T, double> || std::is_same_v<T, Eigen::half> ||
    std::is_same_v<T, Eigen::bfloat16>;

template <class C, class T>
inline C load_as(const T& v) noexcept {
  return static_cast<C>(static_cast<compute_t<T>>(v));
}
template <class T, class C>
inline T store_as(C v) noexcept {
  return static_cast<T>(static_cast<compute_t<T>>(v));
}

/// Scalar reference coefficients of one token, pair order, forward sign:
/// c[i] = a_i cos(p f_i(p)), s[i] = a_i sin(p f_i(p)) (a_i = f.amplitude()[i]), the angle formed in
/// double and reduced mod 2 pi (as fill_table's exact path).
template <class C>
inline void token_coeffs_scalar(const rope_frequencies& f, std::int64_t p, C* c, C* s) noexcept {
  const int n = f.pairs();
  const double* amp = f.amplitude().data();  // attention factor (times pair_mscale[i])
  for (int i = 0; i < n; ++i) {
    const double r = reduce_two_pi(f.angle(p, i));
    c[i] = static_cast<C>(amp[i] * std::cos(r));
    s[i] = static_cast<C>(amp[i] * std::sin(r));
  }
}

/// Turns forward coefficients (a_i cos, a_i sin) into the inverse map's:
/// R(-a) / a_i  =  (a_i cos, -a_i sin) / a_i^2, a_i = amp[i] (the attention
/// factor, times pair_mscale[i] when there is one).
template <class C>
inline void invert_coeffs(C* c, C* s, int n, const double* amp) noexcept {
  for (int i = 0; i < n; ++i) {
    const C k = static_cast<C>(1.0 / (amp[i] * amp[i]));
    c[i] = c[i] * k;
    s[i] = -s[i] * k;
  }
}

/// Scalar reference rotation of one head vector. `in` and `out` are either the
/// same pointer (in place) or non-overlapping. Pair i is (i, i + n) for
/// half_split and (2i, 2i + 1) for interleaved; channels [2n, head_dim) are
/// copied when out != in.
template <class T, class C>
inline void rotate_head_scalar(const T* in, T* out, const C* c, const C* s, int n, pair_layout layout,
                               std::ptrdiff_t head_dim) noexcept {
  for (int i = 0; i < n; ++i) {
    const std::ptrdiff_t j0 = layout == pair_layout::half_split ? i : 2 * i;
    const std::ptrdiff_t j1 = layout == pair_layout::half_split ? i + n : 2 * i + 1;
    const C x0 = load_as<C>(in[j0]);
    const C x1 = load_as<C>(in[j1]);
    out[j0] = store_as<T>(x0 * c[i] - x1 * s[i]);
    out[j1] = store_as<T>(x0 * s[i] + x1 * c[i]);
  }
  if (out != in) {
    for (std::ptrdiff_t j = 2 * static_cast<std::ptrdiff_t>(n); j < head_dim; ++j) out[j] = in[j];
  }
}

/// The per-token kernel of the scalar path: keeps the coefficient pointers.
template <class T, class C>
struct scalar_head_kernel {
  const C* c = nullptr;
  const C* s = nullptr;
  int n = 0;
  pair_layout layout = pair_layout::half_split;
  void prepare(const C* cc, const C* ss, int pairs, pair_layout lay) noexcept {
    c = cc;
    s = ss;
    n = pairs;
    layout = lay;
  }
  void apply_heads(const T* in, std::ptrdiff_t in_hs, T* out, std::ptrdiff_t out_hs, std::ptrdiff_t heads,
                   std::ptrdiff_t head_dim) const noexcept {
    for (std::ptrdiff_t h = 0; h < heads; ++h) {
      rotate_head_scalar(in + h * in_hs, out + h * out_hs, c, s, n, layout, head_dim);
    }
  }
};

}  // namespace longrope::detail
