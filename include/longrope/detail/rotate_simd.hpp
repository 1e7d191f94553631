// longrope: header-only LongRoPE positional interpolation. MIT License.
#pragma once
#if !defined(LONGROPE_INTERNAL_INCLUDE)
#error "longrope/detail/rotate_simd.hpp is internal: include <longrope/rotate.hpp> or <longrope/longrope.hpp>"
#endif

// Vector kernels of the rotation (AVX-512 / AVX2 / NEON, float arithmetic for float,
// Eigen::half and Eigen::bfloat16 storage; double storage uses the scalar
// reference). One namespace per ISA (detail::avx512, detail::avx2,
// detail::neon, and detail::portable for the scalar reference; plus
// detail::avx512bf16, the avx512 body with AVX512-BF16 stores), each holding
// the per-head kernels and its own copy of the token loop (rotate_loop.inc),
// compiled for that ISA (isa_select.hpp); rotate_driver.hpp picks one per call.
//
// Per token, prepare() turns the pair-order coefficients into layout-ready
// arrays once, then apply_heads() runs over the heads of q and of k:
//   half_split   o[i] = x[i] c[i] - x[i+n] s[i],  o[i+n] = x[i] s[i] + x[i+n] c[i]
//                (c, s used in place: contiguous loads, no shuffles)
//   interleaved  o[j] = x[j] D[j] + x[j^1] E[j] with D = (c0 c0 c1 c1 ...),
//                E = (-s0 s0 -s1 s1 ...): one in-lane swap per vector.
// Tails run the same kernel on masked lanes (AVX-512) or on a zero-padded stack
// copy (AVX2, NEON). The arithmetic is the scalar reference's up to fma contraction,
// so results differ from it by at most 1 ulp of float before the store (and
// then by at most 1 ulp of the storage type).

#include <cstdint>
#include <cstring>
#include <type_traits>

#include <Eigen/Core>

#include "../config.hpp"
#include "../frequencies.hpp"
#include "pair_mscale.hpp"
#include "rotate_scalar.hpp"
#include "simd.hpp"

namespace longrope::detail {

template <class T>
inline void copy_pass_through(const T* in, T* out, std::ptrdiff_t from, std::ptrdiff_t head_dim) noexcept {
  if (out != in && head_dim > from) {
    std::memcpy(static_cast<void*>(out + from), static_cast<const void*>(in + from),
                static_cast<std::size_t>(head_dim - from) * sizeof(T));
  }
}

/// Float coefficients of the token on the active ISA (table-free); the scalar
/// reference where no vector kernel runs.
inline void token_coeffs_vector(const rope_frequencies& f, std::int64_t p, float* c, float* s) noexcept {
  const double* freq = p < f.n_hat() ? f.theta().data() : f.inv_freq().data();
  if (sincos_scaled_isa(isa_active(), freq, static_cast<double>(p), f.attention_factor(), f.pairs(), c, s)) {
    apply_pair_mscale(f, c, s);  // LongRoPE2 (no-op without pair_mscale)
  } else {
    token_coeffs_scalar(f, p, c, s);
  }
}

/// Asks for the cache lines of [p, p + bytes) (GCC/Clang; elsewhere a no-op).
inline void prefetch_span(const void* p, std::ptrdiff_t bytes) noexcept {
#if defined(__GNUC__) || defined(__clang__)
  if (bytes <= 0) return;
  const char* b = static_cast<const char*>(p);
  for (std::ptrdiff_t off = 0; off < bytes; off += 64) __builtin_prefetch(b + off, 0, 3);
  __builtin_prefetch(b + bytes - 1, 0, 3);  // the last line when p is not line-aligned
#else
  (void)p, (void)bytes;
#endif
}

/// Storage types whose kernels on an ISA take half-split coefficients in
/// even/odd order per 16-pair block and interleaved coefficients in pair order
/// (no D/E expansion); see the AVX2 bfloat16 kernels. Each ISA namespace
/// declares its own kEvenOdd<T>; the default is false.
template <class T>
inline constexpr bool kEvenOddDefault = false;

/// pc/ps: c/s reordered per block of 16 pairs as (c0 c2 ... c14, c1 c3 ... c15);
/// the last, partial block is zero-padded to 16. pc and ps hold
/// 16 * ceil(n / 16) floats.
inline void permute_even_odd(const float* c, const float* s, int n, float* pc, float* ps) noexcept {
  for (int b = 0; b < n; b += 16) {
    for (int j = 0; j < 8; ++j) {
      const int ie = b + 2 * j;
      const int io = ie + 1;
      pc[b + j] = ie < n ? c[ie] : 0.0f;
      ps[b + j] = ie < n ? s[ie] : 0.0f;
      pc[b + 8 + j] = io < n ? c[io] : 0.0f;
      ps[b + 8 + j] = io < n ? s[io] : 0.0f;
    }
  }
}

/// ISAs with vector registers to spare for a whole token's coefficients
/// (AVX-512: 32) set kHoistCoeffs<T> and define the two functions below in
/// their namespace; elsewhere they are only declared here, never
/// instantiated (vector_kernel.inc calls them under if constexpr).
template <class T>
inline constexpr bool kHoistCoeffsDefault = false;
template <int N, class T>
void half_split_heads_hoisted(const T* in, std::ptrdiff_t in_hs, T* out, std::ptrdiff_t out_hs,
                              std::ptrdiff_t heads, std::ptrdiff_t head_dim, const T* next, const float* c,
                              const float* s) noexcept;
template <int N, class T>
void interleaved_heads_hoisted(const T* in, std::ptrdiff_t in_hs, T* out, std::ptrdiff_t out_hs,
                               std::ptrdiff_t heads, std::ptrdiff_t head_dim, const T* next, const float* d,
                               const float* e) noexcept;

/// The scalar reference's token loop.
namespace portable {
template <class T>
inline constexpr bool kPrefetchNext = false;  // the reference: no prefetch
template <class T>
using head_kernel = scalar_head_kernel<T, compute_t<T>>;
template <class C>
inline void token_coeffs_isa(const rope_frequencies& f, std::int64_t p, C* c, C* s) noexcept {
  token_coeffs_scalar(f, p, c, s);
}
template <class TT>
inline void widen_row(const TT* in, float* out, int n) noexcept {
  widen_row_scalar(in, out, n);
}
#include "rotate_loop.inc"
}  // namespace portable

#if defined(LONGROPE_KERNELS_AVX512)
LONGROPE_TARGET_AVX512_BEGIN
namespace avx512 {
// With per-function targets the bf16 instruction lives only in avx512bf16, so
// that this set has the same body whatever the translation unit's flags.
#if defined(__AVX512BF16__) && !defined(LONGROPE_KERNELS_AVX512BF16)
#define LONGROPE_AVX512_NATIVE_BF16 1
#else
#define LONGROPE_AVX512_NATIVE_BF16 0
#endif
#include "rotate_avx512.inc"
#undef LONGROPE_AVX512_NATIVE_BF16
}  // namespace avx512
LONGROPE_TARGET_END

#if defined(LONGROPE_KERNELS_AVX512BF16)
// The same kernels with AVX512-BF16 stores (isa_select.hpp); run for bfloat16
// storage only, so only those instantiations exist.
LONGROPE_TARGET_AVX512BF16_BEGIN
namespace avx512bf16 {
using avx512::sincos_scaled;
#define LONGROPE_AVX512_NATIVE_BF16 1
#include "rotate_avx512.inc"
#undef LONGROPE_AVX512_NATIVE_BF16
}  // namespace avx512bf16
LONGROPE_TARGET_END
#endif  // LONGROPE_KERNELS_AVX512BF16
#endif  // LONGROPE_KERNELS_AVX512

#if defined(LONGROPE_KERNELS_AVX2)
LONGROPE_TARGET_AVX2_BEGIN
namespace avx2 {
template <class T>
inline constexpr bool kHoistCoeffs = kHoistCoeffsDefault<T>;  // 16 ymm: no room for 64 pairs of c and s

struct vf {
  static constexpr int width = 8;
  using reg = __m256;
  static reg load(const float* p) noexcept { return _mm256_loadu_ps(p); }
  static reg load(const Eigen::half* p) noexcept {
    return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  }
  static reg load(const Eigen::bfloat16* p) noexcept {
    const __m256i w = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
    return _mm256_castsi256_ps(_mm256_slli_epi32(w, 16));
  }
  static void store(float* p, reg v) noexcept { _mm256_storeu_ps(p, v); }
  static void store(Eigen::half* p, reg v) noexcept {
    _mm_storeu_si128(reinterpret_cast<__m128i*>(p), _mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
  }
  static void store(Eigen::bfloat16* p, reg v) noexcept {
    const __m256i u = _mm256_castps_si256(v);
    const __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(1));
    __m256i r = _mm256_srli_epi32(_mm256_add_epi32(_mm256_add_epi32(u, _mm256_set1_epi32(0x7fff)), lsb), 16);
    const __m256i nan = _mm256_castps_si256(_mm256_cmp_ps(v, v, _CMP_UNORD_Q));
    const __m256i qnan = _mm256_or_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(0x40));
    r = _mm256_blendv_epi8(r, qnan, nan);
    // Pack 8 x u32 (each < 2^16) to 8 x u16.
    const __m128i lo = _mm256_castsi256_si128(r);
    const __m128i hi = _mm256_extracti128_si256(r, 1);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(p), _mm_packus_epi32(lo, hi));
  }
  static reg swap_pairs(reg v) noexcept { return _mm256_permute_ps(v, 0xB1); }
};

template <class T>
inline void half_split8(const T* x0p, const T* x1p, T* o0p, T* o1p, const float* c, const float* s) noexcept {
  const __m256 x0 = vf::load(x0p);
  const __m256 x1 = vf::load(x1p);
  const __m256 vc = _mm256_loadu_ps(c);
  const __m256 vs = _mm256_loadu_ps(s);
  vf::store(o0p, _mm256_fmsub_ps(x0, vc, _mm256_mul_ps(x1, vs)));
  vf::store(o1p, _mm256_fmadd_ps(x0, vs, _mm256_mul_ps(x1, vc)));
}

template <class T>
inline void rotate_half_split(const T* in, T* out, const float* c, const float* s, int n) noexcept {
  int i = 0;
  for (; i + 8 <= n; i += 8) half_split8(in + i, in + n + i, out + i, out + n + i, c + i, s + i);
  if (i < n) {
    // Tail: the same kernel on zero-padded copies.
    T x0[8] = {};
    T x1[8] = {};
    float cb[8] = {};
    float sb[8] = {};
    const int left = n - i;
    for (int j = 0; j < left; ++j) {
      x0[j] = in[i + j];
      x1[j] = in[n + i + j];
      cb[j] = c[i + j];
      sb[j] = s[i + j];
    }
    half_split8(x0, x1, x0, x1, cb, sb);
    for (int j = 0; j < left; ++j) {
      out[i + j] = x0[j];
      out[n + i + j] = x1[j];
    }
  }
}

template <class T>
inline void interleaved8(const T* in, T* out, const float* d, const float* e) noexcept {
  const __m256 x = vf::load(in);
  vf::store(out, _mm256_fmadd_ps(x, _mm256_loadu_ps(d), _mm256_mul_ps(vf::swap_pairs(x), _mm256_loadu_ps(e))));
}

template <class T>
inline void rotate_interleaved(const T* in, T* out, const float* d, const float* e, int n2) noexcept {
  int j = 0;
  for (; j + 8 <= n2; j += 8) interleaved8(in + j, out + j, d + j, e + j);
  if (j < n2) {
    T xb[8] = {};
    float db[8] = {};
    float eb[8] = {};
    const int left = n2 - j;
    for (int k = 0; k < left; ++k) {
      xb[k] = in[j + k];
      db[k] = d[j + k];
      eb[k] = e[j + k];
    }
    interleaved8(xb, xb, db, eb);
    for (int k = 0; k < left; ++k) out[j + k] = xb[k];
  }
}


#include "rotate_avx2_bf16.inc"

// See the AVX-512 expand_interleaved: 8 pairs per step.
inline void expand_interleaved(const float* c, const float* s, int n, float* d, float* e) noexcept {
  const __m256 sign = _mm256_setr_ps(-0.0f, 0.0f, -0.0f, 0.0f, -0.0f, 0.0f, -0.0f, 0.0f);
  int i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 vc = _mm256_loadu_ps(c + i);
    const __m256 vs = _mm256_loadu_ps(s + i);
    // unpacklo: (x0 x0 x1 x1 | x4 x4 x5 x5), unpackhi: (x2 x2 x3 x3 | x6 x6 x7 x7).
    const __m256 cl = _mm256_unpacklo_ps(vc, vc);
    const __m256 ch = _mm256_unpackhi_ps(vc, vc);
    const __m256 sl = _mm256_xor_ps(_mm256_unpacklo_ps(vs, vs), sign);
    const __m256 sh = _mm256_xor_ps(_mm256_unpackhi_ps(vs, vs), sign);
    _mm256_storeu_ps(d + 2 * i, _mm256_permute2f128_ps(cl, ch, 0x20));
    _mm256_storeu_ps(d + 2 * i + 8, _mm256_permute2f128_ps(cl, ch, 0x31));
    _mm256_storeu_ps(e + 2 * i, _mm256_permute2f128_ps(sl, sh, 0x20));
    _mm256_storeu_ps(e + 2 * i + 8, _mm256_permute2f128_ps(sl, sh, 0x31));
  }
  for (; i < n; ++i) {
    d[2 * i] = c[i];
    d[2 * i + 1] = c[i];
    e[2 * i] = -s[i];
    e[2 * i + 1] = s[i];
  }
}

/// A 16-bit table row to float (vector widening, scalar tail).
template <class TT>
inline void widen_row(const TT* in, float* out, int n) noexcept {
  int i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(out + i, vf::load(in + i));
  for (; i < n; ++i) out[i] = static_cast<float>(in[i]);
}

/// Float coefficients through this ISA's cos/sin; double through the reference.
template <class C>
inline void token_coeffs_isa(const rope_frequencies& f, std::int64_t p, C* c, C* s) noexcept {
  if constexpr (std::is_same_v<C, float>) {
    const double* freq = p < f.n_hat() ? f.theta().data() : f.inv_freq().data();
    sincos_scaled(freq, static_cast<double>(p), f.attention_factor(), f.pairs(), c, s);
    apply_pair_mscale(f, c, s);  // LongRoPE2 (no-op without pair_mscale)
  } else {
    token_coeffs_scalar(f, p, c, s);
  }
}
#include "vector_kernel.inc"
#include "rotate_loop.inc"

}  // namespace avx2
LONGROPE_TARGET_END
#endif

#if defined(LONGROPE_KERNELS_NEON)
namespace neon {
template <class T>
inline constexpr bool kEvenOdd = kEvenOddDefault<T>;
template <class T>
inline constexpr bool kHoistCoeffs = kHoistCoeffsDefault<T>;

struct vf {
  static constexpr int width = 4;
  using reg = float32x4_t;
  static reg load(const float* p) noexcept { return vld1q_f32(p); }
  static reg load(const Eigen::half* p) noexcept {
    return vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(reinterpret_cast<const std::uint16_t*>(p))));
  }
  static reg load(const Eigen::bfloat16* p) noexcept {
    return vreinterpretq_f32_u32(vshll_n_u16(vld1_u16(reinterpret_cast<const std::uint16_t*>(p)), 16));
  }
  static void store(float* p, reg v) noexcept { vst1q_f32(p, v); }
  static void store(Eigen::half* p, reg v) noexcept {
    // FPCR's default rounding: to nearest even, as Eigen::half(float).
    vst1_u16(reinterpret_cast<std::uint16_t*>(p), vreinterpret_u16_f16(vcvt_f16_f32(v)));
  }
  static void store(Eigen::bfloat16* p, reg v) noexcept {
    // Round to nearest even as Eigen::bfloat16(float); NaNs stay (quiet) NaNs.
    const uint32x4_t u = vreinterpretq_u32_f32(v);
    const uint32x4_t lsb = vandq_u32(vshrq_n_u32(u, 16), vdupq_n_u32(1));
    const uint32x4_t r = vshrq_n_u32(vaddq_u32(vaddq_u32(u, vdupq_n_u32(0x7fff)), lsb), 16);
    const uint32x4_t qnan = vorrq_u32(vshrq_n_u32(u, 16), vdupq_n_u32(0x40));
    const uint32x4_t is_num = vceqq_f32(v, v);
    vst1_u16(reinterpret_cast<std::uint16_t*>(p), vmovn_u32(vbslq_u32(is_num, r, qnan)));
  }
  static reg swap_pairs(reg v) noexcept { return vrev64q_f32(v); }
};

template <class T>
inline void half_split4(const T* x0p, const T* x1p, T* o0p, T* o1p, const float* c, const float* s) noexcept {
  const float32x4_t x0 = vf::load(x0p);
  const float32x4_t x1 = vf::load(x1p);
  const float32x4_t vc = vld1q_f32(c);
  const float32x4_t vs = vld1q_f32(s);
  vf::store(o0p, vfmsq_f32(vmulq_f32(x0, vc), x1, vs));
  vf::store(o1p, vfmaq_f32(vmulq_f32(x1, vc), x0, vs));
}

template <class T>
inline void rotate_half_split(const T* in, T* out, const float* c, const float* s, int n) noexcept {
  int i = 0;
  for (; i + 4 <= n; i += 4) half_split4(in + i, in + n + i, out + i, out + n + i, c + i, s + i);
  if (i < n) {
    // Tail: the same kernel on zero-padded copies.
    T x0[4] = {};
    T x1[4] = {};
    float cb[4] = {};
    float sb[4] = {};
    const int left = n - i;
    for (int j = 0; j < left; ++j) {
      x0[j] = in[i + j];
      x1[j] = in[n + i + j];
      cb[j] = c[i + j];
      sb[j] = s[i + j];
    }
    half_split4(x0, x1, x0, x1, cb, sb);
    for (int j = 0; j < left; ++j) {
      out[i + j] = x0[j];
      out[n + i + j] = x1[j];
    }
  }
}

template <class T>
inline void interleaved4(const T* in, T* out, const float* d, const float* e) noexcept {
  const float32x4_t x = vf::load(in);
  vf::store(out, vfmaq_f32(vmulq_f32(x, vld1q_f32(d)), vf::swap_pairs(x), vld1q_f32(e)));
}

template <class T>
inline void rotate_interleaved(const T* in, T* out, const float* d, const float* e, int n2) noexcept {
  int j = 0;
  for (; j + 4 <= n2; j += 4) interleaved4(in + j, out + j, d + j, e + j);
  if (j < n2) {
    T xb[4] = {};
    float db[4] = {};
    float eb[4] = {};
    const int left = n2 - j;
    for (int k = 0; k < left; ++k) {
      xb[k] = in[j + k];
      db[k] = d[j + k];
      eb[k] = e[j + k];
    }
    interleaved4(xb, xb, db, eb);
    for (int k = 0; k < left; ++k) out[j + k] = xb[k];
  }
}


inline void expand_interleaved(const float* c, const float* s, int n, float* d, float* e) noexcept {
  for (int i = 0; i < n; ++i) {
    d[2 * i] = c[i];
    d[2 * i + 1] = c[i];
    e[2 * i] = -s[i];
    e[2 * i + 1] = s[i];
  }
}

/// A 16-bit table row to float (vector widening, scalar tail).
template <class TT>
inline void widen_row(const TT* in, float* out, int n) noexcept {
  int i = 0;
  for (; i + 4 <= n; i += 4) vst1q_f32(out + i, vf::load(in + i));
  for (; i < n; ++i) out[i] = static_cast<float>(in[i]);
}

/// Float coefficients through this ISA's cos/sin; double through the reference.
template <class C>
inline void token_coeffs_isa(const rope_frequencies& f, std::int64_t p, C* c, C* s) noexcept {
  if constexpr (std::is_same_v<C, float>) {
    const double* freq = p < f.n_hat() ? f.theta().data() : f.inv_freq().data();
    sincos_scaled(freq, static_cast<double>(p), f.attention_factor(), f.pairs(), c, s);
    apply_pair_mscale(f, c, s);  // LongRoPE2 (no-op without pair_mscale)
  } else {
    token_coeffs_scalar(f, p, c, s);
  }
}
#include "vector_kernel.inc"
#include "rotate_loop.inc"

}  // namespace neon
#endif

}  // namespace longrope::detail
