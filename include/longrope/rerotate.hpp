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
///     delta = p * (f_i^to(p) - f_i^from(p))             formed in double, reduced mod 2 pi
///     (x0, x1) -> g * (x0 cos delta - x1 sin delta,  x0 sin delta + x1 cos delta)
///
/// Since rotations about the same plane commute, R_to(p) = R(delta) R_from(p),
/// so for k_from = att_from R_from(p) k the result is att_to R_to(p) k: exactly
/// what rotating the raw key with `to` gives, up to float rounding (a few ulp;
/// tests/test_rerotate.cpp checks it). Pairs with identical frequencies and
/// g = 1 are left bit-identical (for LongRoPE short -> long, g is exactly 1:
/// the attention factor does not depend on the factor set).
///
/// Layouts as in config.hpp: pair i is channels (i, i + d/2) for half_split and
/// (2i, 2i + 1) for interleaved; channels [rotary_dim, head_dim) are untouched.
///
/// Precision: delta carries the relative error of one subtraction and one
/// product of doubles (about 2^-52 relative, ~1e-9 rad at p = 2^24 for a
/// frequency difference of 1), the reduction adds none; cos/sin and the
/// rotation are evaluated in double and rounded once to T on store.
///
/// Complexity: O(batch * tokens * pairs) cos/sin evaluations (shared by all
/// heads) plus O(batch * tokens * heads * rotary_dim) multiply-adds; no
/// allocation. Threading: calls on disjoint token ranges touch disjoint memory.

#include <cmath>
#include <cstdint>
#include <string>
#include <type_traits>

#include "config.hpp"
#include "error.hpp"
#include "frequencies.hpp"
#include "view.hpp"

#define LONGROPE_INTERNAL_INCLUDE
#include "detail/angle.hpp"
#undef LONGROPE_INTERNAL_INCLUDE

namespace longrope {

/// Re-rotates keys (or queries) rotated with `from` so they equal the same
/// vectors rotated with `to`, in place, for tokens [tokens.begin, tokens.end)
/// of every batch row. T is float or double.
///
/// Preconditions (checked before any element is touched; longrope::error
/// "longrope.argument" naming the problem): from and to have the same
/// head_dim, rotary_dim and layout; keys.head_dim == from.head_dim();
/// non-negative extents and strides; non-null keys and positions when the
/// range is non-empty; 0 <= tokens.begin <= tokens.end <= keys.tokens; every
/// position in the range >= 0. Not checked: distinct (b, t, h) must not share
/// memory.
template <class T>
void rerotate(const rope_frequencies& from, const rope_frequencies& to, heads_view<T> keys, positions_view pos,
              token_range tokens);

/// All tokens of the view: rerotate(from, to, keys, pos, {0, keys.tokens}).
template <class T>
void rerotate(const rope_frequencies& from, const rope_frequencies& to, heads_view<T> keys, positions_view pos) {
  rerotate(from, to, keys, pos, token_range{0, keys.tokens});
}

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
  for (std::ptrdiff_t b = 0; b < k.batch; ++b) {
    for (std::ptrdiff_t t = tokens.begin; t < tokens.end; ++t) {
      if (pos(b, t) < 0) {
        argument_fail("rerotate: position " + std::to_string(pos(b, t)) + " of batch row " + std::to_string(b) +
                      ", token " + std::to_string(t) + " is negative");
      }
    }
  }
}

}  // namespace detail

template <class T>
void rerotate(const rope_frequencies& from, const rope_frequencies& to, heads_view<T> keys, positions_view pos,
              token_range tokens) {
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>, "rerotate: T must be float or double");
  detail::rerotate_check(from, to, keys, pos, tokens);
  if (tokens.size() == 0) return;
  const int n = from.pairs();
  const double* amp_to = to.amplitude().data();  // attention factor times pair_mscale[i]
  const double* amp_from = from.amplitude().data();
  const bool half = from.layout() == pair_layout::half_split;
  const std::ptrdiff_t off1 = half ? n : 1;     // second channel of pair i, relative to the first
  const std::ptrdiff_t step = half ? 1 : 2;     // first channel of pair i is i * step
  for (std::ptrdiff_t b = 0; b < keys.batch; ++b) {
    for (std::ptrdiff_t t = tokens.begin; t < tokens.end; ++t) {
      const std::int64_t p = pos(b, t);
      const double pd = static_cast<double>(p);
      for (int i = 0; i < n; ++i) {
        const double g = amp_to[i] / amp_from[i];
        const double df = to.frequency(p, i) - from.frequency(p, i);
        if (df == 0.0 && g == 1.0) continue;  // identical pair: leave it bit-identical
        const double r = detail::reduce_two_pi(pd * df);
        const double c = g * std::cos(r);
        const double s = g * std::sin(r);
        for (std::ptrdiff_t h = 0; h < keys.heads; ++h) {
          T* x = keys.at(b, t, h) + i * step;
          const double x0 = static_cast<double>(x[0]);
          const double x1 = static_cast<double>(x[off1]);
          x[0] = static_cast<T>(x0 * c - x1 * s);
          x[off1] = static_cast<T>(x0 * s + x1 * c);
        }
      }
    }
  }
}

}  // namespace longrope
