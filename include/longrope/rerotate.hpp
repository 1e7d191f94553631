// longrope: header-only LongRoPE positional interpolation. MIT License.
#pragma once

/// \file rerotate.hpp
/// KV-cache re-rotation: convert keys already rotated with one set of
/// frequencies into keys rotated with another, in place, without the
/// un-rotated keys. The cheap alternative to re-prefilling when a LongRoPE
/// sequence crosses the original length and transformers' policy switches from
/// the short to the long factors (docs/methods.md, "Re-rotation").
///
/// What is computed, for every batch row b, token t in the range, head h and
/// rotary pair i < n, with p = pos(b, t), f_i(p) the frequency of pair i at p
/// (rope_frequencies::frequency: theta_i below n_hat, inv_freq_i from n_hat on)
/// and g = g_i = to.amplitude()[i] / from.amplitude()[i] (the attention factors' ratio,
/// per pair when either side has LongRoPE2's pair_mscale):
///
///     delta = p * (f_i^to(p) - f_i^from(p))             formed in double
///     (x0, x1) -> g * (x0 cos delta - x1 sin delta,  x0 sin delta + x1 cos delta)
///
/// Since rotations about the same plane commute, R_to(p) = R(delta) R_from(p),
/// so for k_from = att_from R_from(p) k the result is att_to R_to(p) k: exactly
/// what rotating the raw key with `to` gives, up to rounding. Tokens whose
/// pairs all have identical frequencies (positions below n_hat, or equal
/// sets) are skipped when g = 1, and pairs with identical frequencies come out
/// bit-identical (cos 0 = 1, sin 0 = 0 exactly); for LongRoPE short -> long g
/// is exactly 1 (the attention factor does not depend on the factor set).
///
/// Layouts as in config.hpp: pair i is channels (i, i + d/2) for half_split and
/// (2i, 2i + 1) for interleaved; channels [rotary_dim, head_dim) are untouched.
///
/// How (storage float, Eigen::half, Eigen::bfloat16): the tokens are taken in
/// blocks of at most kRerotateBlockRows; for each token the coefficients
/// g cos delta, g sin delta are formed with the vector cos/sin of fill_table
/// (delta in double, reduced in double, one rounding to float) into a bounded
/// stack table (2 x 2048 floats), then the block is rotated by the vector
/// rotate-from-table kernels of rotate.hpp (the same code as a prefill from a
/// table). Double storage uses the scalar double reference (as rotate does).
///
/// Precision (the rotation's bound, rotate.hpp): per output channel of a pair
/// (x0, x1) of the cached key, the result differs from g R(delta) (x0, x1)
/// evaluated exactly by at most 1e-6 (|x0| + |x1|) max(g, 1) plus one ulp of
/// the storage type (double: the double angle error, ~1e-9 rad at p = 2^24).
/// Against keys rotated directly with `to` from the raw keys, add the rounding
/// the cached key already carries (one storage rounding of the first
/// rotation): tests/test_kv_switch.cpp checks both, for every storage type and
/// head-major, token-major and padded layouts.
///
/// Complexity: O(batch * tokens * pairs) cos/sin evaluations (shared by all
/// heads) plus O(batch * tokens * heads * rotary_dim) multiply-adds, plus the
/// O(batch * tokens) position checks; no allocation (about 21 KiB of stack
/// besides the rotation's own per-token scratch).
/// Threading: calls on disjoint token ranges touch disjoint memory.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <type_traits>

#include "config.hpp"
#include "error.hpp"
#include "frequencies.hpp"
#include "rotate.hpp"
#include "view.hpp"

#define LONGROPE_INTERNAL_INCLUDE
#include "detail/angle.hpp"
#include "detail/rotate_scalar.hpp"
#include "detail/simd.hpp"
#undef LONGROPE_INTERNAL_INCLUDE

namespace longrope {

/// Re-rotates keys (or queries) rotated with `from` so they equal the same
/// vectors rotated with `to`, in place, for tokens [tokens.begin, tokens.end)
/// of every batch row. T is float, double, Eigen::half or Eigen::bfloat16.
///
/// Preconditions (checked before any element is touched; longrope::error
/// "longrope.argument" naming the problem): from and to have the same
/// head_dim, rotary_dim and layout; pairs() <= max_rotary_pairs;
/// keys.head_dim == from.head_dim(); non-negative extents and strides;
/// non-null keys and positions when the range is non-empty; 0 <= tokens.begin
/// <= tokens.end <= keys.tokens; every position in the range in
/// [0, min(from.max_position(), to.max_position())]. Not checked: distinct
/// (b, t, h) must not share memory.
template <class T>
void rerotate(const rope_frequencies& from, const rope_frequencies& to, heads_view<T> keys, positions_view pos,
              token_range tokens);

/// All tokens of the view: rerotate(from, to, keys, pos, {0, keys.tokens}).
template <class T>
void rerotate(const rope_frequencies& from, const rope_frequencies& to, heads_view<T> keys, positions_view pos) {
  rerotate(from, to, keys, pos, token_range{0, keys.tokens});
}

/// Tokens per block of the vector path: the per-block coefficient table is
/// kRerotateBlockRows x pairs() floats for cos and as many for sin, at most
/// 2048 floats each (fewer rows for more pairs).
inline constexpr int kRerotateBlockRows = 64;

// ---------------------------------------------------------------------------
// Implementation

namespace detail {

template <class T>
void rerotate_check(const rope_frequencies& from, const rope_frequencies& to, const heads_view<T>& k,
                    positions_view pos, token_range tokens) {
  if (from.head_dim() != to.head_dim() || from.rotary_dim() != to.rotary_dim()) {
    argument_fail("rerotate: from and to differ in geometry (head_dim " + std::to_string(from.head_dim()) + "/" +
                  std::to_string(to.head_dim()) + ", rotary_dim " + std::to_string(from.rotary_dim()) + "/" +
                  std::to_string(to.rotary_dim()) + ")");
  }
  if (from.layout() != to.layout()) argument_fail("rerotate: from and to differ in pair layout");
  if (from.pairs() > kMaxRotaryPairs) {
    argument_fail("rerotate: pairs() = " + std::to_string(from.pairs()) + " exceeds the kernel limit " +
                  std::to_string(kMaxRotaryPairs));
  }
  if (k.head_dim != from.head_dim()) {
    argument_fail("rerotate: keys.head_dim is " + std::to_string(k.head_dim) + ", the frequencies need " +
                  std::to_string(from.head_dim()));
  }
  if (k.batch < 0 || k.tokens < 0 || k.heads < 0) argument_fail("rerotate: negative extent in keys");
  if (k.batch_stride < 0 || k.token_stride < 0 || k.head_stride < 0) argument_fail("rerotate: negative stride in keys");
  if (tokens.begin < 0 || tokens.begin > tokens.end || tokens.end > k.tokens) {
    argument_fail("rerotate: token range [" + std::to_string(tokens.begin) + ", " + std::to_string(tokens.end) +
                  ") is outside [0, " + std::to_string(k.tokens) + "]");
  }
  if (tokens.size() == 0 || k.batch == 0) return;
  if (pos.empty()) argument_fail("rerotate: null positions");
  if (pos.batch_stride < 0) argument_fail("rerotate: negative positions.batch_stride");
  if (k.heads > 0 && k.data == nullptr) argument_fail("rerotate: null keys");
  const std::int64_t max_p = std::min(from.max_position(), to.max_position());
  for (std::ptrdiff_t b = 0; b < k.batch; ++b) {
    for (std::ptrdiff_t t = tokens.begin; t < tokens.end; ++t) {
      const std::int64_t p = pos(b, t);
      if (p < 0 || p > max_p) {
        argument_fail("rerotate: position " + std::to_string(p) + " of batch row " + std::to_string(b) +
                      ", token " + std::to_string(t) + (p < 0 ? " is negative" : " gives angles above 2^29 rad (rope_frequencies::max_angle)"));
      }
    }
  }
}

/// The frequency differences of one "region" of positions: which side of
/// from.n_hat() and of to.n_hat() p lies on decides which frequencies apply.
struct rerotate_deltas {
  alignas(64) double abs_df[kMaxRotaryPairs];  ///< |f_i^to(p) - f_i^from(p)|
  bool negative[kMaxRotaryPairs];              ///< f_i^to(p) < f_i^from(p): sin changes sign
  /// LongRoPE2: the per-pair amplitude ratio beyond the scalar g,
  /// (to.amplitude_i / from.amplitude_i) / g, when either side has a pair_mscale.
  alignas(64) double gain[kMaxRotaryPairs];
  bool has_gain = false;
  int region = -1;
  bool any_negative = false;
  bool identity = false;                       ///< every difference 0 and every amplitude ratio 1: nothing to do

  rerotate_deltas(const rope_frequencies& from, const rope_frequencies& to, double g) noexcept {
    has_gain = from.has_pair_mscale() || to.has_pair_mscale();
    if (!has_gain) return;
    for (int i = 0; i < from.pairs(); ++i) {
      const auto u = static_cast<std::size_t>(i);
      gain[i] = (to.amplitude()[u] / from.amplitude()[u]) / g;
    }
  }

  static int region_of(const rope_frequencies& from, const rope_frequencies& to, std::int64_t p) noexcept {
    return (p < from.n_hat() ? 1 : 0) | (p < to.n_hat() ? 2 : 0);
  }
  void update(const rope_frequencies& from, const rope_frequencies& to, std::int64_t p, double g) noexcept {
    const int r = region_of(from, to, p);
    if (r == region) return;
    region = r;
    any_negative = false;
    bool all_zero = true;
    for (int i = 0; i < from.pairs(); ++i) {
      const double df = to.frequency(p, i) - from.frequency(p, i);
      abs_df[i] = std::fabs(df);
      negative[i] = df < 0.0;
      any_negative = any_negative || negative[i];
      all_zero = all_zero && df == 0.0;
    }
    identity = all_zero && g == 1.0 && !has_gain;
  }
};

/// Coefficients g_i cos(p d_i), g_i sin(p d_i) of one token into c, s (float):
/// the vector cos/sin of fill_table on the active ISA (isa.hpp), the scalar
/// reference where none runs; g_i = g, times gain[i] with a pair_mscale.
inline void rerotate_coeffs(const rerotate_deltas& d, std::int64_t p, double g, int n, float* c,
                            float* s) noexcept {
  if (sincos_scaled_isa(isa_active(), d.abs_df, static_cast<double>(p), g, n, c, s)) {
    if (d.has_gain) {
      for (int i = 0; i < n; ++i) {
        c[i] = static_cast<float>(static_cast<double>(c[i]) * d.gain[i]);
        s[i] = static_cast<float>(static_cast<double>(s[i]) * d.gain[i]);
      }
    }
  } else {
    const double pd = static_cast<double>(p);
    for (int i = 0; i < n; ++i) {
      const double r = reduce_two_pi(pd * d.abs_df[i]);
      const double gi = d.has_gain ? g * d.gain[i] : g;
      c[i] = static_cast<float>(gi * std::cos(r));
      s[i] = static_cast<float>(gi * std::sin(r));
    }
  }
  if (d.any_negative) {
    for (int i = 0; i < n; ++i) s[i] = d.negative[i] ? -s[i] : s[i];
  }
}

/// float / half / bfloat16 storage: blocks of tokens through rotate-from-table.
template <class T>
void rerotate_vector(const rope_frequencies& from, const rope_frequencies& to, const heads_view<T>& keys,
                     positions_view pos, token_range tokens) {
  const int n = from.pairs();
  const double g = to.attention_factor() / from.attention_factor();
  const int rows_max = std::max(1, std::min(kRerotateBlockRows, 2048 / std::max(n, 1)));
  alignas(64) float cbuf[2048];
  alignas(64) float sbuf[2048];
  std::int64_t local[kRerotateBlockRows];
  for (int r = 0; r < kRerotateBlockRows; ++r) local[r] = r;
  rerotate_deltas d(from, to, g);
  for (std::ptrdiff_t b = 0; b < keys.batch; ++b) {
    std::ptrdiff_t t = tokens.begin;
    while (t < tokens.end) {
      // One block: a run of up to rows_max tokens that need work.
      std::ptrdiff_t t0 = t;
      int rows = 0;
      while (t < tokens.end && rows < rows_max) {
        const std::int64_t p = pos(b, t);
        d.update(from, to, p, g);
        if (d.identity) {
          if (rows > 0) break;  // close the run; this token is skipped next round
          ++t;
          ++t0;
          continue;
        }
        rerotate_coeffs(d, p, g, n, cbuf + rows * n, sbuf + rows * n);
        ++rows;
        ++t;
      }
      if (rows == 0) continue;
      heads_view<T> sub = keys;
      sub.data = keys.at(b, t0, 0);
      sub.batch = 1;
      sub.tokens = rows;
      const rope_table table{{cbuf, rows, n}, {sbuf, rows, n}, 0};
      rotate(to, table, sub, positions_view{local, 0}, token_range{0, rows});
    }
  }
}

/// double storage: the scalar double reference (as rotate for double).
inline void rerotate_double(const rope_frequencies& from, const rope_frequencies& to, const heads_view<double>& keys,
                            positions_view pos, token_range tokens) noexcept {
  const int n = from.pairs();
  const double g = to.attention_factor() / from.attention_factor();
  alignas(64) double c[kMaxRotaryPairs];
  alignas(64) double s[kMaxRotaryPairs];
  rerotate_deltas d(from, to, g);
  for (std::ptrdiff_t b = 0; b < keys.batch; ++b) {
    for (std::ptrdiff_t t = tokens.begin; t < tokens.end; ++t) {
      const std::int64_t p = pos(b, t);
      d.update(from, to, p, g);
      if (d.identity) continue;
      const double pd = static_cast<double>(p);
      for (int i = 0; i < n; ++i) {
        const double r = reduce_two_pi(pd * d.abs_df[i]);
        const double gi = d.has_gain ? g * d.gain[i] : g;
        c[i] = gi * std::cos(r);
        s[i] = d.negative[i] ? -gi * std::sin(r) : gi * std::sin(r);
      }
      for (std::ptrdiff_t h = 0; h < keys.heads; ++h) {
        double* x = keys.at(b, t, h);
        rotate_head_scalar<double, double>(x, x, c, s, n, from.layout(), keys.head_dim);
      }
    }
  }
}

}  // namespace detail

template <class T>
void rerotate(const rope_frequencies& from, const rope_frequencies& to, heads_view<T> keys, positions_view pos,
              token_range tokens) {
  static_assert(detail::is_storage_type_v<T>, "rerotate: T must be float, double, Eigen::half or Eigen::bfloat16");
  detail::rerotate_check(from, to, keys, pos, tokens);
  if (tokens.size() == 0 || keys.batch == 0 || keys.heads == 0) return;
  if constexpr (std::is_same_v<T, double>) {
    detail::rerotate_double(from, to, keys, pos, tokens);
  } else {
    detail::rerotate_vector(from, to, keys, pos, tokens);
  }
}

}  // namespace longrope
