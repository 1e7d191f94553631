// longrope: header-only LongRoPE positional interpolation. MIT License.
#pragma once

/// \file table.hpp
/// cos/sin tables into caller memory, attention factor applied, n_hat respected.
///
/// Row r of the output holds, for position p = positions[r] and pair i < pairs():
///     cos(r, i) = a_i * cos(p * f_i(p)),
///     sin(r, i) = a_i * sin(p * f_i(p)),
/// where a_i = f.amplitude()[i]: the attention factor, times LongRoPE2's
/// pair_mscale[i] when the config has one (float output on the vector path then
/// rounds twice: error <= 2^-23 |a_i| instead of 2e-7 absolute),
/// where f_i(p) = theta_i if p < n_hat else inv_freq_i (rope_frequencies::frequency).
/// Columns are in pair order. A half-split engine that stores [c0..c(n-1) c0..c(n-1)]
/// (transformers' cat(freqs, freqs)) duplicates each row; the rotation kernels in
/// rotate.hpp read pair-order rows directly.
///
/// Precision:
///   angle_precision::exact   the angle is formed in double (exact integer p times
///     the double frequency), reduced mod 2*pi in double, then cos/sin. For float
///     output the error against cos/sin of the exact product p * f_i is below
///     2e-7 at every accepted position, i.e. up to rope_frequencies::max_position()
///     (angles <= 2^29 rad, where the double angle's own rounding is <= 3e-8;
///     tests/test_hardening.cpp checks it against a long double reference at the
///     bound, test_golden.cpp and test_cli.cpp against mpmath up to p = 2^24).
///     Float output is vectorised (AVX-512/AVX2, see detail/simd.hpp): reduction by
///     pi/2 in double, fdlibm polynomials in double, one rounding to float; for a
///     position_range, 31 of every 32 rows advance by the angle-addition
///     recurrence in double instead (error < 1.5e-14 before the rounding). It
///     matches the scalar reference within one float ulp of the attention factor,
///     absolute (1.2e-7 for attention factors in [1, 2)): the two double values
///     can round to neighbouring floats. Near zero crossings, where the value is
///     tiny, that is many ulps of the value itself (not "1 ulp").
///     The ISA is chosen at run time (isa.hpp: active_isa(), set_isa(),
///     LONGROPE_ISA); LONGROPE_FORCE_SCALAR or isa::scalar selects the scalar
///     path; double output always uses it.
///   angle_precision::float32 transformers' arithmetic: float(f_i) * float(p) in
///     float32, then float32 cos/sin: off by ~1e-2 at p = 131071, use it only to
///     reproduce reference implementations.
///
/// Complexity: O(rows * pairs) cos/sin evaluations; no allocation; noexcept
/// after the argument checks. Large float tables (cos + sin >= 8 MiB, exact
/// angles, <= 64 pairs, AVX2/AVX-512) are written with non-temporal stores
/// (detail/stream_store.hpp): the same values, bitwise, but the table is not
/// left in the cache (it would not fit anyway) and no line is read before it
/// is written (1.5x faster on Zen 2); smaller tables use plain stores. Thread safety: concurrent calls on disjoint output
/// rows are safe (split the positions across threads).

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <type_traits>

#include <Eigen/Core>

#include "config.hpp"
#include "error.hpp"
#include "frequencies.hpp"
#include "isa.hpp"
#include "view.hpp"

#define LONGROPE_INTERNAL_INCLUDE
#include "detail/angle.hpp"
#include "detail/pair_mscale.hpp"
#include "detail/simd.hpp"
#include "detail/stream_store.hpp"
#undef LONGROPE_INTERNAL_INCLUDE

namespace longrope {

/// Bytes a caller needs for one table (cos or sin) of `positions` rows in pair order.
template <class T>
constexpr std::size_t table_bytes(std::int64_t positions, int pairs) noexcept {
  return static_cast<std::size_t>(positions) * static_cast<std::size_t>(pairs) * sizeof(T);
}

namespace detail {

template <class T>
void check_table_args(const rope_frequencies& f, std::ptrdiff_t rows, const matrix_view<T>& cos_out,
                      const matrix_view<T>& sin_out) {
  if (cos_out.rows < rows || sin_out.rows < rows) {
    argument_fail("fill_table: output has " + std::to_string(std::min(cos_out.rows, sin_out.rows)) +
                  " rows, need " + std::to_string(rows));
  }
  if (cos_out.cols < f.pairs() || sin_out.cols < f.pairs()) {
    argument_fail("fill_table: output has " + std::to_string(std::min(cos_out.cols, sin_out.cols)) +
                  " columns, need pairs() = " + std::to_string(f.pairs()));
  }
}

/// The scalar reference for one row; the vector kernels must match it.
template <class T>
void table_row_scalar(const rope_frequencies& f, std::int64_t p, T* c, T* s,
                      angle_precision prec) noexcept {
  const int n = f.pairs();
  const double* amp = f.amplitude().data();  // attention factor (times pair_mscale[i])
  if (prec == angle_precision::exact) {
    for (int i = 0; i < n; ++i) {
      const double r = reduce_two_pi(f.angle(p, i));
      c[i] = static_cast<T>(amp[i] * std::cos(r));
      s[i] = static_cast<T>(amp[i] * std::sin(r));
    }
  } else {
    const float pf = static_cast<float>(p);
    for (int i = 0; i < n; ++i) {
      const float af = static_cast<float>(amp[i]);
      const float a = static_cast<float>(f.frequency(p, i)) * pf;
      c[i] = static_cast<T>(std::cos(a) * af);
      s[i] = static_cast<T>(std::sin(a) * af);
    }
  }
}

/// The vector path for one row: float output, exact angles (see detail/simd.hpp
/// for the error bound); everything else is the scalar reference.
template <class T>
void table_row_vector(const rope_frequencies& f, std::int64_t p, T* c, T* s, angle_precision prec) noexcept {
  if constexpr (std::is_same_v<T, float>) {
    if (prec == angle_precision::exact) {
      const double* freq = p < f.n_hat() ? f.theta().data() : f.inv_freq().data();
      if (sincos_scaled_isa(isa_active(), freq, static_cast<double>(p), f.attention_factor(), f.pairs(), c, s)) {
        apply_pair_mscale(f, c, s);  // LongRoPE2 (no-op without pair_mscale)
        return;
      }
    }
  }
  table_row_scalar(f, p, c, s, prec);
}

/// Rows per block of a streamed fill: one recurrence block of fill_range_scaled
/// (every ISA restarts its recurrence every 32 rows), so computing block by
/// block gives the direct path's bits. Pairs up to kStreamPairs (head_dim 128):
/// the stack buffers are 2 x 2 x 8 KiB.
inline constexpr std::ptrdiff_t kStreamRows = 32;
inline constexpr int kStreamPairs = 64;

/// Whether a float fill of rows x pairs (cos and sin) streams its stores.
inline bool table_streams(int isa, std::ptrdiff_t rows, int pairs) noexcept {
  return stream_available(isa) && pairs > 0 && pairs <= kStreamPairs &&
         2 * static_cast<std::size_t>(rows) * static_cast<std::size_t>(pairs) * sizeof(float) >= kStreamTableBytes;
}

/// Streams m rows of n floats from buf (row stride n) into rows r0.. of out.
inline void stream_rows(int isa, matrix_view<float> out, std::ptrdiff_t r0, std::ptrdiff_t m, int n,
                        const float* buf) noexcept {
  const auto un = static_cast<std::size_t>(n);
  if (out.row_stride == n) {
    stream_copy_isa(isa, out.row(r0), buf, static_cast<std::size_t>(m) * un);
  } else {
    for (std::ptrdiff_t r = 0; r < m; ++r) stream_copy_isa(isa, out.row(r0 + r), buf + r * n, un);
  }
}

/// The streamed fill (see detail/stream_store.hpp): block by block, each block
/// computed into the stack by `fill_block(r0, m, cb, sb)` (rows r0 .. r0 + m - 1,
/// row stride pairs()), then streamed out; sfence at the end.
template <class FillBlock>
void table_streamed(const rope_frequencies& f, int isa, std::ptrdiff_t rows, matrix_view<float> c,
                    matrix_view<float> s, FillBlock fill_block) noexcept {
  alignas(64) float cb[kStreamRows * kStreamPairs];
  alignas(64) float sb[kStreamRows * kStreamPairs];
  const int n = f.pairs();
  for (std::ptrdiff_t r0 = 0; r0 < rows; r0 += kStreamRows) {
    const std::ptrdiff_t m = std::min(kStreamRows, rows - r0);
    fill_block(r0, m, cb, sb);
    stream_rows(isa, c, r0, m, n, cb);
    stream_rows(isa, s, r0, m, n, sb);
  }
  stream_fence_isa(isa);
}

/// Rows [0, rows) for positions p0 .. p0 + rows - 1: the vector path uses the
/// recurrence of detail/simd.hpp (fill_range_scaled) on each side of n_hat.
template <class T>
void table_range(const rope_frequencies& f, std::int64_t p0, std::ptrdiff_t rows, matrix_view<T> c, matrix_view<T> s,
                 angle_precision prec) noexcept {
  if constexpr (std::is_same_v<T, float>) {
    const int isa = isa_active();
    if (prec == angle_precision::exact && f.pairs() <= 512 && isa != kIsaScalar) {
      const std::int64_t split = std::clamp<std::int64_t>(f.n_hat() - p0, 0, rows);  // rows below n_hat
      const double att = f.attention_factor();
      if (table_streams(isa, rows, f.pairs())) {
        // Blocks of kStreamRows counted from p0 and from n_hat, as the direct calls below.
        const std::ptrdiff_t sp = static_cast<std::ptrdiff_t>(split);
        const int n = f.pairs();
        const auto mscale = [&](float* cb, float* sb, std::int64_t m) {
          for (std::int64_t k = 0; k < m; ++k) apply_pair_mscale(f, cb + k * n, sb + k * n);
        };
        auto block = [&](std::ptrdiff_t r, std::ptrdiff_t m, const double* freq, float* cb, float* sb) {
          if (!fill_range_isa(isa, freq, p0 + r, m, att, n, cb, n, sb, n)) {
            for (std::ptrdiff_t k = 0; k < m; ++k) table_row_scalar(f, p0 + r + k, cb + k * n, sb + k * n, prec);
            return;
          }
          mscale(cb, sb, m);
        };
        if (c.row_stride == n && s.row_stride == n &&
            (sp == 0 || fill_range_streamed_isa(isa, f.theta().data(), p0, sp, att, n, c.data, s.data, mscale)) &&
            (rows == sp || fill_range_streamed_isa(isa, f.inv_freq().data(), p0 + sp, rows - sp, att, n, c.row(sp),
                                                   s.row(sp), mscale))) {
          return;
        }
        if (sp > 0) {
          table_streamed(f, isa, sp, c, s, [&](std::ptrdiff_t r, std::ptrdiff_t m, float* cb, float* sb) {
            block(r, m, f.theta().data(), cb, sb);
          });
        }
        if (rows > sp) {
          const matrix_view<float> c2{c.row(sp), rows - sp, c.cols, c.row_stride};
          const matrix_view<float> s2{s.row(sp), rows - sp, s.cols, s.row_stride};
          table_streamed(f, isa, rows - sp, c2, s2, [&](std::ptrdiff_t r, std::ptrdiff_t m, float* cb, float* sb) {
            block(sp + r, m, f.inv_freq().data(), cb, sb);
          });
        }
        return;
      }
      bool done = true;
      if (split > 0) {
        done = fill_range_isa(isa, f.theta().data(), p0, split, att, f.pairs(), c.row(0), c.row_stride, s.row(0),
                              s.row_stride);
      }
      if (done && rows > split) {
        const auto r = static_cast<std::ptrdiff_t>(split);
        done = fill_range_isa(isa, f.inv_freq().data(), p0 + split, rows - split, att, f.pairs(), c.row(r),
                              c.row_stride, s.row(r), s.row_stride);
      }
      if (done) {
        if (f.has_pair_mscale()) {
          for (std::ptrdiff_t r = 0; r < rows; ++r) apply_pair_mscale(f, c.row(r), s.row(r));
        }
        return;
      }
    }
  }
  for (std::ptrdiff_t r = 0; r < rows; ++r) table_row_vector(f, p0 + r, c.row(r), s.row(r), prec);
}

template <class T>
inline constexpr bool is_half_table_v = std::is_same_v<T, Eigen::half> || std::is_same_v<T, Eigen::bfloat16>;

/// 16-bit rows: the float rows (vector path), each value then rounded to
/// nearest-even in T; in blocks of rows on the stack (2 x 16 KiB). More than
/// 512 pairs: the scalar reference per row.
template <class T>
void table_rows_16(const rope_frequencies& f, const std::int64_t* positions, std::int64_t p0, std::ptrdiff_t rows,
                   matrix_view<T> c, matrix_view<T> s, angle_precision prec) noexcept {
  const int n = f.pairs();
  if (n > 512) {
    for (std::ptrdiff_t r = 0; r < rows; ++r) {
      table_row_scalar(f, positions != nullptr ? positions[r] : p0 + r, c.row(r), s.row(r), prec);
    }
    return;
  }
  constexpr int kBlock = 4096;
  float cb[kBlock];
  float sb[kBlock];
  const std::ptrdiff_t per = kBlock / (n > 0 ? n : 1);
  for (std::ptrdiff_t r0 = 0; r0 < rows; r0 += per) {
    const std::ptrdiff_t m = std::min(per, rows - r0);
    if (positions != nullptr) {
      for (std::ptrdiff_t r = 0; r < m; ++r) table_row_vector(f, positions[r0 + r], cb + r * n, sb + r * n, prec);
    } else {
      table_range<float>(f, p0 + r0, m, {cb, m, n}, {sb, m, n}, prec);
    }
    for (std::ptrdiff_t r = 0; r < m; ++r) {
      T* cr = c.row(r0 + r);
      T* sr = s.row(r0 + r);
      for (int i = 0; i < n; ++i) {
        cr[i] = static_cast<T>(cb[r * n + i]);
        sr[i] = static_cast<T>(sb[r * n + i]);
      }
    }
  }
}

}  // namespace detail

/// Fills rows [0, n) of cos_out and sin_out for positions[0..n).
/// Preconditions (checked, longrope::error "longrope.argument"): every position
/// in [0, f.max_position()], outputs with >= n rows and >= pairs() columns. T is float or double,
/// or Eigen::half / Eigen::bfloat16 (16-bit tables for rope_table_half / rope_table_bf16: the
/// float value rounded to nearest-even, error <= 0.5 ulp of T + the float error).
template <class T>
void fill_table(const rope_frequencies& f, const std::int64_t* positions, std::ptrdiff_t n,
                matrix_view<T> cos_out, matrix_view<T> sin_out,
                angle_precision prec = angle_precision::exact) {
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, double> || detail::is_half_table_v<T>,
                "fill_table: T must be float, double, Eigen::half or Eigen::bfloat16");
  if (n < 0) detail::argument_fail("fill_table: negative position count");
  if (n > 0 && positions == nullptr) detail::argument_fail("fill_table: null positions");
  detail::check_table_args(f, n, cos_out, sin_out);
  for (std::ptrdiff_t r = 0; r < n; ++r) {
    if (positions[r] < 0 || positions[r] > f.max_position()) {
      detail::argument_fail("fill_table: position " + std::to_string(positions[r]) + " at index " +
                            std::to_string(r) + (positions[r] < 0 ? " is negative" : " gives angles above 2^29 rad (rope_frequencies::max_angle)"));
    }
  }
  if constexpr (detail::is_half_table_v<T>) {
    detail::table_rows_16(f, positions, 0, n, cos_out, sin_out, prec);
  } else {
    if constexpr (std::is_same_v<T, float>) {
      const int isa = detail::isa_active();
      if (prec == angle_precision::exact && detail::table_streams(isa, n, f.pairs())) {
        const int np = f.pairs();
        detail::table_streamed(f, isa, n, cos_out, sin_out,
                               [&](std::ptrdiff_t r0, std::ptrdiff_t m, float* cb, float* sb) {
                                 for (std::ptrdiff_t k = 0; k < m; ++k) {
                                   detail::table_row_vector(f, positions[r0 + k], cb + k * np, sb + k * np, prec);
                                 }
                               });
        return;
      }
    }
    for (std::ptrdiff_t r = 0; r < n; ++r) {
      detail::table_row_vector(f, positions[r], cos_out.row(r), sin_out.row(r), prec);
    }
  }
}

/// Fills rows [0, range.size()) for positions range.begin .. range.end-1.
/// Preconditions (checked): 0 <= range.begin, range.end - 1 <= f.max_position(),
/// outputs large enough.
template <class T>
void fill_table(const rope_frequencies& f, position_range range, matrix_view<T> cos_out,
                matrix_view<T> sin_out, angle_precision prec = angle_precision::exact) {
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, double> || detail::is_half_table_v<T>,
                "fill_table: T must be float, double, Eigen::half or Eigen::bfloat16");
  if (range.begin < 0) detail::argument_fail("fill_table: range.begin is negative");
  const std::ptrdiff_t n = static_cast<std::ptrdiff_t>(range.size());
  if (n > 0 && range.end - 1 > f.max_position()) {
    detail::argument_fail("fill_table: position " + std::to_string(range.end - 1) + " gives angles above 2^29 rad (rope_frequencies::max_angle)");
  }
  detail::check_table_args(f, n, cos_out, sin_out);
  if constexpr (detail::is_half_table_v<T>) {
    detail::table_rows_16(f, nullptr, range.begin, n, cos_out, sin_out, prec);
  } else {
    detail::table_range(f, range.begin, n, cos_out, sin_out, prec);
  }
}

}  // namespace longrope
