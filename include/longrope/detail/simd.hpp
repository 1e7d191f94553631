// longrope: header-only LongRoPE positional interpolation. MIT License.
#pragma once
#if !defined(LONGROPE_INTERNAL_INCLUDE)
#error "longrope/detail/simd.hpp is internal: include <longrope/rotate.hpp> or <longrope/longrope.hpp>"
#endif

// Compile-time SIMD selection and the vector cos/sin used by fill_table and the
// table-free rotation.
//
// Kernel sets (see isa_select.hpp): AVX-512 F+BW+VL+DQ (16 float / 8 double
// lanes, masked tails), AVX2+FMA+F16C (8 float / 4 double lanes, tails through
// a stack buffer), AArch64 NEON (4 float / 2 double lanes), and the scalar
// reference. Each set lives in its own namespace (detail::avx512, detail::avx2,
// detail::neon) and, on x86 with GCC/Clang, is compiled with function-level
// target attributes, so one body per ISA exists whatever the TU's flags.
//
// cos/sin (sincos_scaled): the angle a = p * f_i is formed in double exactly
// as the scalar reference (one rounding), reduced by k = round(a * 2/pi) with
// pi/2 as a double-double through fma (the remainder r in [-pi/4, pi/4] is
// then as exact as a itself), and sin/cos of r are evaluated with fdlibm's
// minimax polynomials (__kernel_sin/__kernel_cos, |error| < 2^-58 on
// [-pi/4, pi/4]) in double, selected and signed by k mod 4, scaled by the
// attention factor and rounded once to float. The result differs from the
// scalar reference (std::cos/std::sin of the 2 pi-reduced angle, rounded to
// float) by at most 1 ulp of float, and only where the double values straddle
// a float rounding boundary; against the true value its error is below
// 0.5 ulp(float) + 1e-15 + |a| * 2^-53 (6.2e-8 + 1.9e-9 at a = 1.6e7 rad,
// attention factor 1). glibc's vector sin/cos is not used: it loses accuracy
// above ~1e4 rad.

#include <cstddef>
#include <cstdint>

#include "isa_select.hpp"

namespace longrope::detail {

// fdlibm k_sin.c / k_cos.c coefficients (|x| <= pi/4).
inline constexpr double kS1 = -1.66666666666666324348e-01;
inline constexpr double kS2 = 8.33333333332248946124e-03;
inline constexpr double kS3 = -1.98412698298579493134e-04;
inline constexpr double kS4 = 2.75573137070700676789e-06;
inline constexpr double kS5 = -2.50507602534068634195e-08;
inline constexpr double kS6 = 1.58969099521155010221e-10;
inline constexpr double kC1 = 4.16666666666666019037e-02;
inline constexpr double kC2 = -1.38888888888741095749e-03;
inline constexpr double kC3 = 2.48015872894767294178e-05;
inline constexpr double kC4 = -2.75573143513906633035e-07;
inline constexpr double kC5 = 2.08757232129817482790e-09;
inline constexpr double kC6 = -1.13596475577881948265e-11;
// pi/2 as a double-double, 2/pi, and 1.5 * 2^52 (adding it rounds to an integer
// kept in the low mantissa bits).
inline constexpr double kPio2Hi = 1.57079632679489655800e+00;
inline constexpr double kPio2Lo = 6.12323399573676603587e-17;
inline constexpr double kTwoOverPi = 6.36619772367581382433e-01;
inline constexpr double kRoundMagic = 6755399441055744.0;

#if defined(LONGROPE_KERNELS_AVX512)
LONGROPE_TARGET_AVX512_BEGIN
namespace avx512 {

/// sin and cos of a (0 <= a < 2^51) in double, before any scaling.
inline void sincos_pd(__m512d a, __m512d& vs, __m512d& vc) noexcept {
  const __m512d magic = _mm512_set1_pd(kRoundMagic);
  const __m512i one = _mm512_set1_epi64(1);
  const __m512i two = _mm512_set1_epi64(2);
  const __m512d t = _mm512_fmadd_pd(a, _mm512_set1_pd(kTwoOverPi), magic);
  const __m512d k = _mm512_sub_pd(t, magic);
  const __m512i q = _mm512_castpd_si512(t);
  __m512d r = _mm512_fnmadd_pd(k, _mm512_set1_pd(kPio2Hi), a);
  r = _mm512_fnmadd_pd(k, _mm512_set1_pd(kPio2Lo), r);
  const __m512d z = _mm512_mul_pd(r, r);
  __m512d ps = _mm512_fmadd_pd(z, _mm512_set1_pd(kS6), _mm512_set1_pd(kS5));
  ps = _mm512_fmadd_pd(z, ps, _mm512_set1_pd(kS4));
  ps = _mm512_fmadd_pd(z, ps, _mm512_set1_pd(kS3));
  ps = _mm512_fmadd_pd(z, ps, _mm512_set1_pd(kS2));
  ps = _mm512_fmadd_pd(z, ps, _mm512_set1_pd(kS1));
  const __m512d sn = _mm512_fmadd_pd(_mm512_mul_pd(z, r), ps, r);
  __m512d pc = _mm512_fmadd_pd(z, _mm512_set1_pd(kC6), _mm512_set1_pd(kC5));
  pc = _mm512_fmadd_pd(z, pc, _mm512_set1_pd(kC4));
  pc = _mm512_fmadd_pd(z, pc, _mm512_set1_pd(kC3));
  pc = _mm512_fmadd_pd(z, pc, _mm512_set1_pd(kC2));
  pc = _mm512_fmadd_pd(z, pc, _mm512_set1_pd(kC1));
  const __m512d cs =
      _mm512_fmadd_pd(_mm512_mul_pd(z, z), pc, _mm512_fnmadd_pd(z, _mm512_set1_pd(0.5), _mm512_set1_pd(1.0)));
  // Quadrant k mod 4: (sin, cos) = (S, C), (C, -S), (-S, -C), (-C, S).
  const __mmask8 swap = _mm512_test_epi64_mask(q, one);
  const __mmask8 sneg = _mm512_test_epi64_mask(q, two);
  const __mmask8 cneg = _mm512_test_epi64_mask(_mm512_add_epi64(q, one), two);
  vs = _mm512_mask_blend_pd(swap, sn, cs);
  vc = _mm512_mask_blend_pd(swap, cs, sn);
  vs = _mm512_mask_sub_pd(vs, sneg, _mm512_setzero_pd(), vs);
  vc = _mm512_mask_sub_pd(vc, cneg, _mm512_setzero_pd(), vc);
}

inline __mmask8 tail8(int left) noexcept {
  return left >= 8 ? static_cast<__mmask8>(0xFF) : static_cast<__mmask8>((1u << left) - 1u);
}

/// c[i] = float(att * cos(p * freq[i])), s[i] = float(att * sin(p * freq[i])), i < n.
inline void sincos_scaled(const double* freq, double p, double att, int n, float* c, float* s) noexcept {
  const __m512d vp = _mm512_set1_pd(p);
  const __m512d vatt = _mm512_set1_pd(att);
  for (int i = 0; i < n; i += 8) {
    const __mmask8 m = tail8(n - i);
    __m512d vs;
    __m512d vc;
    sincos_pd(_mm512_mul_pd(vp, _mm512_maskz_loadu_pd(m, freq + i)), vs, vc);
    _mm256_mask_storeu_ps(s + i, m, _mm512_maskz_cvtpd_ps(m, _mm512_mul_pd(vs, vatt)));
    _mm256_mask_storeu_ps(c + i, m, _mm512_maskz_cvtpd_ps(m, _mm512_mul_pd(vc, vatt)));
  }
}

/// Rows r < rows of a table for the consecutive positions p0 + r:
/// c[r * cs + i] = float(att * cos((p0 + r) * freq[i])), likewise s.
/// Every kRecurrenceRows rows restart from sincos_pd of the exact double angle;
/// the rows between advance by the angle-addition recurrence in double
/// (c' = c cos f - s sin f, s' = s cos f + c sin f), which adds at most ~2 ulp
/// of double per step: < 1.5e-14 after 31 steps, far below float rounding.
/// The work per pair and row drops from a polynomial pair to 4 fma/mul.
inline constexpr std::int64_t kRecurrenceRows = 32;

inline __mmask8 lanes8(int left) noexcept {
  return left <= 0 ? static_cast<__mmask8>(0) : tail8(left);
}

// G independent 8-pair vectors through kRecurrenceRows rows: G recurrence
// chains in flight hide the mul + fma latency (one chain at a time was
// latency-bound: 131072 x 48 took 4.1 ms, with G = 4 then 2: 3.55 ms, against
// 2.1 ms to write the bytes), and pairs of vectors go out as one 16-float store.
template <int G>
inline void fill_block(const double* freq, const double* stepc, const double* steps, __m512d vp, __m512d vatt,
                       int i, int n, std::int64_t nrows, float* cr, std::ptrdiff_t cs, float* sr,
                       std::ptrdiff_t ss) noexcept {
  __mmask8 m[G];
  __m512d fc[G], fs[G], vc[G], vs[G];
  for (int g = 0; g < G; ++g) {
    m[g] = lanes8(n - i - 8 * g);
    fc[g] = _mm512_maskz_loadu_pd(m[g], stepc + i + 8 * g);
    fs[g] = _mm512_maskz_loadu_pd(m[g], steps + i + 8 * g);
    sincos_pd(_mm512_mul_pd(vp, _mm512_maskz_loadu_pd(m[g], freq + i + 8 * g)), vs[g], vc[g]);
    vs[g] = _mm512_mul_pd(vs[g], vatt);
    vc[g] = _mm512_mul_pd(vc[g], vatt);
  }
  for (std::int64_t r = 0; r < nrows; ++r, cr += cs, sr += ss) {
    for (int g = 0; g + 1 < G; g += 2) {
      const __mmask16 m2 = static_cast<__mmask16>(m[g] | (m[g + 1] << 8));
      const __m512 c2 = _mm512_insertf32x8(_mm512_castps256_ps512(_mm512_maskz_cvtpd_ps(m[g], vc[g])),
                                           _mm512_maskz_cvtpd_ps(m[g + 1], vc[g + 1]), 1);
      const __m512 s2 = _mm512_insertf32x8(_mm512_castps256_ps512(_mm512_maskz_cvtpd_ps(m[g], vs[g])),
                                           _mm512_maskz_cvtpd_ps(m[g + 1], vs[g + 1]), 1);
      _mm512_mask_storeu_ps(cr + i + 8 * g, m2, c2);
      _mm512_mask_storeu_ps(sr + i + 8 * g, m2, s2);
    }
    if constexpr (G % 2 == 1) {
      _mm256_mask_storeu_ps(cr + i + 8 * (G - 1), m[G - 1], _mm512_maskz_cvtpd_ps(m[G - 1], vc[G - 1]));
      _mm256_mask_storeu_ps(sr + i + 8 * (G - 1), m[G - 1], _mm512_maskz_cvtpd_ps(m[G - 1], vs[G - 1]));
    }
    for (int g = 0; g < G; ++g) {
      const __m512d nc = _mm512_fmsub_pd(vc[g], fc[g], _mm512_mul_pd(vs[g], fs[g]));
      vs[g] = _mm512_fmadd_pd(vs[g], fc[g], _mm512_mul_pd(vc[g], fs[g]));
      vc[g] = nc;
    }
  }
}

inline void fill_range_scaled(const double* freq, std::int64_t p0, std::int64_t rows, double att, int n, float* c,
                              std::ptrdiff_t cs, float* s, std::ptrdiff_t ss) noexcept {
  alignas(64) double stepc[512];
  alignas(64) double steps[512];
  const __m512d vatt = _mm512_set1_pd(att);
  for (int i = 0; i < n; i += 8) {
    const __mmask8 m = tail8(n - i);
    __m512d vs;
    __m512d vc;
    sincos_pd(_mm512_maskz_loadu_pd(m, freq + i), vs, vc);
    _mm512_mask_storeu_pd(steps + i, m, vs);
    _mm512_mask_storeu_pd(stepc + i, m, vc);
  }
  for (std::int64_t r0 = 0; r0 < rows; r0 += kRecurrenceRows) {
    const std::int64_t nrows = rows - r0 < kRecurrenceRows ? rows - r0 : kRecurrenceRows;
    const __m512d vp = _mm512_set1_pd(static_cast<double>(p0 + r0));
    float* cr = c + r0 * cs;
    float* sr = s + r0 * ss;
    int i = 0;
    for (; n - i > 16; i += 32) fill_block<4>(freq, stepc, steps, vp, vatt, i, n, nrows, cr, cs, sr, ss);
    if (n - i > 8) {
      fill_block<2>(freq, stepc, steps, vp, vatt, i, n, nrows, cr, cs, sr, ss);
    } else if (n - i > 0) {
      fill_block<1>(freq, stepc, steps, vp, vatt, i, n, nrows, cr, cs, sr, ss);
    }
  }
}

}  // namespace avx512
LONGROPE_TARGET_END
#endif

#if defined(LONGROPE_KERNELS_AVX2)
LONGROPE_TARGET_AVX2_BEGIN
namespace avx2 {

/// sin and cos of a (0 <= a < 2^51) in double, before any scaling.
inline void sincos_pd(__m256d a, __m256d& vs, __m256d& vc) noexcept {
  const __m256d magic = _mm256_set1_pd(kRoundMagic);
  const __m256d t = _mm256_fmadd_pd(a, _mm256_set1_pd(kTwoOverPi), magic);
  const __m256d k = _mm256_sub_pd(t, magic);
  const __m256i q = _mm256_castpd_si256(t);
  __m256d r = _mm256_fnmadd_pd(k, _mm256_set1_pd(kPio2Hi), a);
  r = _mm256_fnmadd_pd(k, _mm256_set1_pd(kPio2Lo), r);
  const __m256d z = _mm256_mul_pd(r, r);
  __m256d ps = _mm256_fmadd_pd(z, _mm256_set1_pd(kS6), _mm256_set1_pd(kS5));
  ps = _mm256_fmadd_pd(z, ps, _mm256_set1_pd(kS4));
  ps = _mm256_fmadd_pd(z, ps, _mm256_set1_pd(kS3));
  ps = _mm256_fmadd_pd(z, ps, _mm256_set1_pd(kS2));
  ps = _mm256_fmadd_pd(z, ps, _mm256_set1_pd(kS1));
  const __m256d sn = _mm256_fmadd_pd(_mm256_mul_pd(z, r), ps, r);
  __m256d pc = _mm256_fmadd_pd(z, _mm256_set1_pd(kC6), _mm256_set1_pd(kC5));
  pc = _mm256_fmadd_pd(z, pc, _mm256_set1_pd(kC4));
  pc = _mm256_fmadd_pd(z, pc, _mm256_set1_pd(kC3));
  pc = _mm256_fmadd_pd(z, pc, _mm256_set1_pd(kC2));
  pc = _mm256_fmadd_pd(z, pc, _mm256_set1_pd(kC1));
  const __m256d cs =
      _mm256_fmadd_pd(_mm256_mul_pd(z, z), pc, _mm256_fnmadd_pd(z, _mm256_set1_pd(0.5), _mm256_set1_pd(1.0)));
  const __m256i one = _mm256_set1_epi64x(1);
  const __m256i two = _mm256_set1_epi64x(2);
  const __m256d swap = _mm256_castsi256_pd(_mm256_cmpeq_epi64(_mm256_and_si256(q, one), one));
  // Sign bits: bit 1 of k (sin) and of k + 1 (cos), moved to bit 63.
  const __m256d ssign = _mm256_castsi256_pd(_mm256_slli_epi64(_mm256_and_si256(q, two), 62));
  const __m256d csign = _mm256_castsi256_pd(_mm256_slli_epi64(_mm256_and_si256(_mm256_add_epi64(q, one), two), 62));
  vs = _mm256_xor_pd(_mm256_blendv_pd(sn, cs, swap), ssign);
  vc = _mm256_xor_pd(_mm256_blendv_pd(cs, sn, swap), csign);
}

// Lane masks for a tail of `left` (< 4 active lanes: 1..3; >= 4: all).
inline __m256i tail4_pd(int left) noexcept {
  return _mm256_cmpgt_epi64(_mm256_set1_epi64x(left), _mm256_setr_epi64x(0, 1, 2, 3));
}
inline __m128i tail4_ps(int left) noexcept { return _mm_cmpgt_epi32(_mm_set1_epi32(left), _mm_setr_epi32(0, 1, 2, 3)); }

/// Two double vectors (8 lanes) to one float vector.
inline __m256 cvt2(__m256d lo, __m256d hi) noexcept {
  return _mm256_set_m128(_mm256_cvtpd_ps(hi), _mm256_cvtpd_ps(lo));
}

/// c[i] = float(att * cos(p * freq[i])), s[i] = float(att * sin(p * freq[i])), i < n.
/// Full groups of 8 pairs: two independent polynomial chains and plain
/// loads/stores (vmaskmov stores are microcoded on AMD Zen: the masked form
/// for every vector took 220 ns per 64-pair token there); masked tail.
inline void sincos_scaled(const double* freq, double p, double att, int n, float* c, float* s) noexcept {
  const __m256d vp = _mm256_set1_pd(p);
  const __m256d vatt = _mm256_set1_pd(att);
  int i = 0;
  for (; i + 8 <= n; i += 8) {
    __m256d s0, c0, s1, c1;
    sincos_pd(_mm256_mul_pd(vp, _mm256_loadu_pd(freq + i)), s0, c0);
    sincos_pd(_mm256_mul_pd(vp, _mm256_loadu_pd(freq + i + 4)), s1, c1);
    _mm256_storeu_ps(s + i, cvt2(_mm256_mul_pd(s0, vatt), _mm256_mul_pd(s1, vatt)));
    _mm256_storeu_ps(c + i, cvt2(_mm256_mul_pd(c0, vatt), _mm256_mul_pd(c1, vatt)));
  }
  for (; i < n; i += 4) {
    const int left = n - i;
    __m256d vs;
    __m256d vc;
    sincos_pd(_mm256_mul_pd(vp, _mm256_maskload_pd(freq + i, tail4_pd(left))), vs, vc);
    _mm_maskstore_ps(s + i, tail4_ps(left), _mm256_cvtpd_ps(_mm256_mul_pd(vs, vatt)));
    _mm_maskstore_ps(c + i, tail4_ps(left), _mm256_cvtpd_ps(_mm256_mul_pd(vc, vatt)));
  }
}

/// See the AVX-512 fill_range_scaled.
inline constexpr std::int64_t kRecurrenceRows = 32;

// G (even) chains of 4 pairs, columns [i, i + 4G) all inside the row (no
// masks), through nrows rows from the exact start; see the AVX-512 fill_block.
// side.step() runs once per row written (stream_store.hpp: a streamed fill
// copies the previous block out a few lines at a time in between).
struct no_side {
  void step() noexcept {}
};
template <int G, class Side>
inline void fill_cols(const double* freq, const double* stepc, const double* steps, __m256d vp, __m256d vatt, int i,
                      std::int64_t nrows, float* cr, std::ptrdiff_t cs, float* sr, std::ptrdiff_t ss,
                      Side& side) noexcept {
  __m256d fc[G], fs[G], vc[G], vs[G];
  for (int g = 0; g < G; ++g) {
    fc[g] = _mm256_load_pd(stepc + i + 4 * g);
    fs[g] = _mm256_load_pd(steps + i + 4 * g);
    sincos_pd(_mm256_mul_pd(vp, _mm256_loadu_pd(freq + i + 4 * g)), vs[g], vc[g]);
    vs[g] = _mm256_mul_pd(vs[g], vatt);
    vc[g] = _mm256_mul_pd(vc[g], vatt);
  }
  for (std::int64_t r = 0; r < nrows; ++r, cr += cs, sr += ss) {
    for (int g = 0; g < G; g += 2) {
      _mm256_storeu_ps(cr + i + 4 * g, cvt2(vc[g], vc[g + 1]));
      _mm256_storeu_ps(sr + i + 4 * g, cvt2(vs[g], vs[g + 1]));
    }
    side.step();
    for (int g = 0; g < G; ++g) {
      const __m256d nc = _mm256_fmsub_pd(vc[g], fc[g], _mm256_mul_pd(vs[g], fs[g]));
      vs[g] = _mm256_fmadd_pd(vs[g], fc[g], _mm256_mul_pd(vc[g], fs[g]));
      vc[g] = nc;
    }
  }
}

/// The recurrence steps: stepc[i] = cos(freq[i]), steps[i] = sin(freq[i]), i < n (<= 512, rounded up to 4).
inline void fill_steps(const double* freq, int n, double* stepc, double* steps) noexcept {
  for (int i = 0; i < n; i += 4) {
    __m256d vs;
    __m256d vc;
    sincos_pd(_mm256_maskload_pd(freq + i, tail4_pd(n - i)), vs, vc);
    _mm256_store_pd(steps + i, vs);
    _mm256_store_pd(stepc + i, vc);
  }
}

/// One block of nrows <= kRecurrenceRows rows from position p (exact start, then the recurrence).
template <class Side>
inline void fill_block(const double* freq, const double* stepc, const double* steps, double p, std::int64_t nrows,
                       __m256d vatt, int n, float* cb, std::ptrdiff_t cs, float* sb, std::ptrdiff_t ss,
                       Side& side) noexcept {
  const __m256d vp = _mm256_set1_pd(p);
  int i = 0;
  // 16 then 8 pairs at a time: 4 or 2 recurrence chains in flight, plain stores.
  for (; i + 16 <= n; i += 16) fill_cols<4>(freq, stepc, steps, vp, vatt, i, nrows, cb, cs, sb, ss, side);
  for (; i + 8 <= n; i += 8) fill_cols<2>(freq, stepc, steps, vp, vatt, i, nrows, cb, cs, sb, ss, side);
  for (; i < n; i += 4) {
    const __m128i m = tail4_ps(n - i);
    const __m256d fc = _mm256_load_pd(stepc + i);
    const __m256d fs = _mm256_load_pd(steps + i);
    __m256d vs;
    __m256d vc;
    sincos_pd(_mm256_mul_pd(vp, _mm256_maskload_pd(freq + i, tail4_pd(n - i))), vs, vc);
    vs = _mm256_mul_pd(vs, vatt);
    vc = _mm256_mul_pd(vc, vatt);
    float* cr = cb + i;
    float* sr = sb + i;
    for (std::int64_t r = 0; r < nrows; ++r, cr += cs, sr += ss) {
      _mm_maskstore_ps(cr, m, _mm256_cvtpd_ps(vc));
      _mm_maskstore_ps(sr, m, _mm256_cvtpd_ps(vs));
      side.step();
      const __m256d nc = _mm256_fmsub_pd(vc, fc, _mm256_mul_pd(vs, fs));
      vs = _mm256_fmadd_pd(vs, fc, _mm256_mul_pd(vc, fs));
      vc = nc;
    }
  }
}

inline void fill_range_scaled(const double* freq, std::int64_t p0, std::int64_t rows, double att, int n, float* c,
                              std::ptrdiff_t cs, float* s, std::ptrdiff_t ss) noexcept {
  alignas(32) double stepc[512];
  alignas(32) double steps[512];
  fill_steps(freq, n, stepc, steps);
  const __m256d vatt = _mm256_set1_pd(att);
  no_side side;
  for (std::int64_t r0 = 0; r0 < rows; r0 += kRecurrenceRows) {
    const std::int64_t nrows = rows - r0 < kRecurrenceRows ? rows - r0 : kRecurrenceRows;
    fill_block(freq, stepc, steps, static_cast<double>(p0 + r0), nrows, vatt, n, c + r0 * cs, cs, s + r0 * ss, ss,
               side);
  }
}

}  // namespace avx2
LONGROPE_TARGET_END
#endif

#if defined(LONGROPE_KERNELS_NEON)
namespace neon {

/// sin and cos of a (0 <= a < 2^51) in double, before any scaling.
inline void sincos_pd(float64x2_t a, float64x2_t& vs, float64x2_t& vc) noexcept {
  const float64x2_t magic = vdupq_n_f64(kRoundMagic);
  const float64x2_t t = vfmaq_f64(magic, a, vdupq_n_f64(kTwoOverPi));
  const float64x2_t k = vsubq_f64(t, magic);
  const uint64x2_t q = vreinterpretq_u64_f64(t);
  float64x2_t r = vfmsq_f64(a, k, vdupq_n_f64(kPio2Hi));
  r = vfmsq_f64(r, k, vdupq_n_f64(kPio2Lo));
  const float64x2_t z = vmulq_f64(r, r);
  float64x2_t ps = vfmaq_f64(vdupq_n_f64(kS5), z, vdupq_n_f64(kS6));
  ps = vfmaq_f64(vdupq_n_f64(kS4), z, ps);
  ps = vfmaq_f64(vdupq_n_f64(kS3), z, ps);
  ps = vfmaq_f64(vdupq_n_f64(kS2), z, ps);
  ps = vfmaq_f64(vdupq_n_f64(kS1), z, ps);
  const float64x2_t sn = vfmaq_f64(r, vmulq_f64(z, r), ps);
  float64x2_t pc = vfmaq_f64(vdupq_n_f64(kC5), z, vdupq_n_f64(kC6));
  pc = vfmaq_f64(vdupq_n_f64(kC4), z, pc);
  pc = vfmaq_f64(vdupq_n_f64(kC3), z, pc);
  pc = vfmaq_f64(vdupq_n_f64(kC2), z, pc);
  pc = vfmaq_f64(vdupq_n_f64(kC1), z, pc);
  const float64x2_t cs = vfmaq_f64(vfmsq_f64(vdupq_n_f64(1.0), z, vdupq_n_f64(0.5)), vmulq_f64(z, z), pc);
  const uint64x2_t one = vdupq_n_u64(1);
  const uint64x2_t two = vdupq_n_u64(2);
  const uint64x2_t swap = vceqq_u64(vandq_u64(q, one), one);
  // Sign bits: bit 1 of k (sin) and of k + 1 (cos), moved to bit 63.
  const uint64x2_t ssign = vshlq_n_u64(vandq_u64(q, two), 62);
  const uint64x2_t csign = vshlq_n_u64(vandq_u64(vaddq_u64(q, one), two), 62);
  vs = vreinterpretq_f64_u64(veorq_u64(vreinterpretq_u64_f64(vbslq_f64(swap, cs, sn)), ssign));
  vc = vreinterpretq_f64_u64(veorq_u64(vreinterpretq_u64_f64(vbslq_f64(swap, sn, cs)), csign));
}

// Two lanes of freq (the second 0 past n).
inline float64x2_t load_freq2(const double* freq, int left) noexcept {
  return left >= 2 ? vld1q_f64(freq) : vsetq_lane_f64(freq[0], vdupq_n_f64(0.0), 0);
}
inline void store2(float* p, float64x2_t v, int left) noexcept {
  const float32x2_t f = vcvt_f32_f64(v);
  if (left >= 2) {
    vst1_f32(p, f);
  } else {
    vst1_lane_f32(p, f, 0);
  }
}

/// c[i] = float(att * cos(p * freq[i])), s[i] = float(att * sin(p * freq[i])), i < n.
inline void sincos_scaled(const double* freq, double p, double att, int n, float* c, float* s) noexcept {
  const float64x2_t vp = vdupq_n_f64(p);
  const float64x2_t vatt = vdupq_n_f64(att);
  for (int i = 0; i < n; i += 2) {
    const int left = n - i;
    float64x2_t vs;
    float64x2_t vc;
    sincos_pd(vmulq_f64(vp, load_freq2(freq + i, left)), vs, vc);
    store2(s + i, vmulq_f64(vs, vatt), left);
    store2(c + i, vmulq_f64(vc, vatt), left);
  }
}

/// See the AVX-512 fill_range_scaled.
inline constexpr std::int64_t kRecurrenceRows = 32;

inline void fill_range_scaled(const double* freq, std::int64_t p0, std::int64_t rows, double att, int n, float* c,
                              std::ptrdiff_t cs, float* s, std::ptrdiff_t ss) noexcept {
  alignas(16) double stepc[512];
  alignas(16) double steps[512];
  const float64x2_t vatt = vdupq_n_f64(att);
  for (int i = 0; i < n; i += 2) {
    float64x2_t vs;
    float64x2_t vc;
    sincos_pd(load_freq2(freq + i, n - i), vs, vc);
    vst1q_f64(steps + i, vs);
    vst1q_f64(stepc + i, vc);
  }
  for (std::int64_t r0 = 0; r0 < rows; r0 += kRecurrenceRows) {
    const std::int64_t r1 = rows - r0 < kRecurrenceRows ? rows : r0 + kRecurrenceRows;
    const float64x2_t vp = vdupq_n_f64(static_cast<double>(p0 + r0));
    for (int i = 0; i < n; i += 2) {
      const int left = n - i;
      const float64x2_t fc = vld1q_f64(stepc + i);
      const float64x2_t fs = vld1q_f64(steps + i);
      float64x2_t vs;
      float64x2_t vc;
      sincos_pd(vmulq_f64(vp, load_freq2(freq + i, left)), vs, vc);
      vs = vmulq_f64(vs, vatt);
      vc = vmulq_f64(vc, vatt);
      float* cr = c + r0 * cs + i;
      float* sr = s + r0 * ss + i;
      for (std::int64_t r = r0; r < r1; ++r, cr += cs, sr += ss) {
        store2(cr, vc, left);
        store2(sr, vs, left);
        const float64x2_t nc = vfmsq_f64(vmulq_f64(vc, fc), vs, fs);
        vs = vfmaq_f64(vmulq_f64(vc, fs), vs, fc);
        vc = nc;
      }
    }
  }
}

}  // namespace neon
#endif

// ---------------------------------------------------------------------------
// Dispatch by ISA number (isa_select.hpp). false: no vector kernel for it.

/// One row: c[i] = float(att cos(p freq[i])), s[i] likewise, i < n.
inline bool sincos_scaled_isa(int isa, const double* freq, double p, double att, int n, float* c,
                              float* s) noexcept {
#if !defined(LONGROPE_KERNELS_ANY)
  (void)freq, (void)p, (void)att, (void)n, (void)c, (void)s;
#endif
  switch (isa) {
#if defined(LONGROPE_KERNELS_AVX512)
    case kIsaAvx512: avx512::sincos_scaled(freq, p, att, n, c, s); return true;
#endif
#if defined(LONGROPE_KERNELS_AVX2)
    case kIsaAvx2: avx2::sincos_scaled(freq, p, att, n, c, s); return true;
#endif
#if defined(LONGROPE_KERNELS_NEON)
    case kIsaNeon: neon::sincos_scaled(freq, p, att, n, c, s); return true;
#endif
    default: return false;
  }
}

/// Rows for consecutive positions p0 .. p0 + rows - 1 (n <= 512), see fill_range_scaled.
inline bool fill_range_isa(int isa, const double* freq, std::int64_t p0, std::int64_t rows, double att, int n,
                           float* c, std::ptrdiff_t cs, float* s, std::ptrdiff_t ss) noexcept {
#if !defined(LONGROPE_KERNELS_ANY)
  (void)freq, (void)p0, (void)rows, (void)att, (void)n, (void)c, (void)cs, (void)s, (void)ss;
#endif
  switch (isa) {
#if defined(LONGROPE_KERNELS_AVX512)
    case kIsaAvx512: avx512::fill_range_scaled(freq, p0, rows, att, n, c, cs, s, ss); return true;
#endif
#if defined(LONGROPE_KERNELS_AVX2)
    case kIsaAvx2: avx2::fill_range_scaled(freq, p0, rows, att, n, c, cs, s, ss); return true;
#endif
#if defined(LONGROPE_KERNELS_NEON)
    case kIsaNeon: neon::fill_range_scaled(freq, p0, rows, att, n, c, cs, s, ss); return true;
#endif
    default: return false;
  }
}

}  // namespace longrope::detail
