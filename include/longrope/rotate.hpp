// longrope: header-only LongRoPE positional interpolation. MIT License.
#pragma once

/// \file rotate.hpp
/// Rotary embedding of query and key activations, in place or out of place,
/// from a precomputed table or table-free (cos/sin per token, exact angles).
///
/// What is computed, for every batch row b in [0, x.batch), token t in the
/// token range, head h and rotary pair i < n = f.pairs(), with p = pos(b, t):
///
///     c = a_i * cos(p * f_i(p)),  s = a_i * sin(p * f_i(p))      (a_i = f.amplitude()[i]: the attention
///                                                                factor, times LongRoPE2's pair_mscale[i])
///     forward:  (x0, x1) -> (x0 c - x1 s,  x0 s + x1 c)
///     inverse:  (x0, x1) -> (x0 c + x1 s, -x0 s + x1 c) / a_i^2   (the exact inverse of forward)
///
/// where f_i(p) is rope_frequencies::frequency (theta_i below n_hat, inv_freq_i
/// from n_hat on) and the pair (x0, x1) sits in the head vector as
///
///     half_split  (transformers rotate_half, GPT-NeoX, Phi-3), d = rotary_dim:
///         [ x0_0 x0_1 ... x0_(n-1) | x1_0 x1_1 ... x1_(n-1) | pass-through ... ]
///     interleaved (GPT-J, Meta llama, llama2.c, ggml NORMAL):
///         [ x0_0 x1_0 x0_1 x1_1 ... x0_(n-1) x1_(n-1) | pass-through ... ]
///
/// Channels [rotary_dim, head_dim) are never modified (out of place: copied).
///
/// Storage types: float, double, Eigen::half, Eigen::bfloat16. Arithmetic is in
/// float (double for double storage); reduced-precision values are widened on
/// load and rounded to nearest-even on store.
///
/// Paths. Table-free: the angle p * f_i(p) is formed in double (exact integer
/// times double frequency), reduced in double (mod 2 pi in the scalar reference,
/// mod pi/2 in the vector kernels), then cos/sin are
/// evaluated once per token and shared by every head (and by q and k in
/// rotate_qk). With a table: rows of a rope_table written by fill_table.
/// The vector kernels (AVX-512, AVX2, NEON; chosen at run time from what the
/// CPU supports, see isa.hpp: active_isa(), set_isa(), LONGROPE_ISA;
/// LONGROPE_FORCE_SCALAR compiles the scalar reference only) agree with
/// the scalar reference to within the bounds documented in docs/performance.md
/// and checked by tests/test_rotate.cpp: per output channel of a pair (x0, x1),
/// 1e-6 (|x0| + |x1|) max(att, 1) plus one ulp of the storage type. A consumer
/// compiled without -march flags gets the same kernels as a -march=native
/// build; translation units compiled with different flags may be mixed.
///
/// Example (prefill of one layer, token-major q and k, positions 0..n-1):
///
///     std::vector<std::int64_t> pos(n);  std::iota(pos.begin(), pos.end(), 0);
///     longrope::rotate_qk(freqs, longrope::token_major(q, 1, n, n_q_heads, head_dim),
///                         longrope::token_major(k, 1, n, n_kv_heads, head_dim),
///                         {pos.data(), 0}, {0, n});
///
/// Threading: every function takes a token_range applied to every batch row;
/// calls on disjoint token ranges (or disjoint views) touch disjoint memory and
/// may run concurrently. All functions are reentrant; rope_frequencies and
/// rope_table are only read. Decode (one token) splits by heads instead: give
/// each thread a sub-view of heads [h0, h1), i.e. the same view with
/// data = at(0, 0, h0) and heads = h1 - h0 (heads_view::head_range does this);
/// each thread then computes the token's cos/sin itself (about 60 ns), or all
/// read one precomputed table row.
///
/// Errors: every precondition listed below is checked before any element is
/// touched and reported as longrope::error with id "longrope.argument"; the
/// loops themselves are noexcept and never allocate (per-token scratch lives
/// on the stack, hence the limit pairs() <= 512).
///
/// Complexity: O(batch * range * (pairs + heads * head_dim)) for the table-free
/// path (one cos/sin per pair per token and batch row), the same without the
/// pairs term per token from a table; plus an O(batch * range) position check.

#include <cstdint>
#include <string>
#include <type_traits>

#include "config.hpp"
#include "error.hpp"
#include "frequencies.hpp"
#include "isa.hpp"
#include "view.hpp"

#define LONGROPE_INTERNAL_INCLUDE
#include "detail/rotate_driver.hpp"
#undef LONGROPE_INTERNAL_INCLUDE

namespace longrope {

/// A precomputed cos/sin table: row r holds, in pair order, att * cos and
/// att * sin of every pair for position first_position + r (as written by
/// fill_table for the same rope_frequencies). cos and sin need the same number
/// of rows and at least pairs() columns. TT: float (rope_table), or
/// Eigen::half / Eigen::bfloat16 (rope_table_half / rope_table_bf16) for
/// engines that keep tables in 16 bits: rows are widened to float per token
/// (the rotation's arithmetic is the same; the coefficients carry the table's
/// rounding, 2^-11 relative for half, 2^-8 for bfloat16).
template <class TT>
struct basic_rope_table {
  static_assert(detail::is_table_type_v<TT>, "rope table entries must be float, Eigen::half or Eigen::bfloat16");
  matrix_view<const TT> cos;
  matrix_view<const TT> sin;
  std::int64_t first_position = 0;
};
using rope_table = basic_rope_table<float>;
using rope_table_half = basic_rope_table<Eigen::half>;
using rope_table_bf16 = basic_rope_table<Eigen::bfloat16>;

/// forward applies R(p) (the embedding); inverse applies R(p)^-1 (e.g. to undo
/// a rotation, or to re-rotate cached keys from one factor set to another).
enum class rotation_direction { forward, inverse };

/// The largest pairs() the rotation kernels accept (rotary_dim <= 1024).
inline constexpr int max_rotary_pairs = detail::kMaxRotaryPairs;

// ---------------------------------------------------------------------------
// Table-free

/// Rotates x in place for tokens [tokens.begin, tokens.end) of every batch row,
/// cos/sin computed per token (exact double angle, reduced mod 2 pi).
/// Preconditions (checked, "longrope.argument"): x.head_dim == f.head_dim()
/// (so rotary_dim <= head_dim), f.pairs() <= max_rotary_pairs, non-negative
/// extents and strides, non-null data and positions when the range is
/// non-empty, 0 <= tokens.begin <= tokens.end <= x.tokens, pos(b, t) >= 0 in
/// the range, and pos(b, t) <= f.max_position() (angles <= 2^29 rad, where
/// the documented accuracy holds: 536870912 positions for plain RoPE).
/// Not checked: distinct (b, t, h) must not share memory.
template <class T>
void rotate(const rope_frequencies& f, heads_view<T> x, positions_view pos, token_range tokens,
            rotation_direction dir = rotation_direction::forward) {
  static_assert(!std::is_const_v<T>, "rotate: in-place rotation needs a mutable view");
  detail::rotate_entry<T>(f, nullptr, {x, x}, nullptr, pos, tokens, dir == rotation_direction::inverse, "rotate");
}

/// Out of place: out = R(p) in (inverse: R(p)^-1 in), pass-through channels
/// copied. in and out must have equal batch/tokens/heads/head_dim; strides may
/// differ. in and out either do not overlap or are the same view.
template <class T>
void rotate(const rope_frequencies& f, heads_view<const detail::identity_t<T>> in, heads_view<T> out,
            positions_view pos, token_range tokens, rotation_direction dir = rotation_direction::forward) {
  detail::rotate_entry<T>(f, nullptr, {in, out}, nullptr, pos, tokens, dir == rotation_direction::inverse, "rotate");
}

/// q and k of the same tokens together (heads may differ: grouped-query
/// attention); cos/sin computed once per token for both. q and k need equal
/// batch, tokens and head_dim. Same preconditions as rotate.
template <class T>
void rotate_qk(const rope_frequencies& f, heads_view<T> q, heads_view<T> k, positions_view pos,
               token_range tokens, rotation_direction dir = rotation_direction::forward) {
  static_assert(!std::is_const_v<T>, "rotate_qk: in-place rotation needs a mutable view");
  const detail::io_pair<T> kk{k, k};
  detail::rotate_entry<T>(f, nullptr, {q, q}, &kk, pos, tokens, dir == rotation_direction::inverse, "rotate_qk");
}

/// Out-of-place rotate_qk.
template <class T>
void rotate_qk(const rope_frequencies& f, heads_view<const detail::identity_t<T>> q_in, heads_view<T> q_out,
               heads_view<const detail::identity_t<T>> k_in, heads_view<T> k_out, positions_view pos,
               token_range tokens, rotation_direction dir = rotation_direction::forward) {
  const detail::io_pair<T> kk{k_in, k_out};
  detail::rotate_entry<T>(f, nullptr, {q_in, q_out}, &kk, pos, tokens, dir == rotation_direction::inverse, "rotate_qk");
}

// ---------------------------------------------------------------------------
// From a table

/// As the table-free rotate, with cos/sin read from table row
/// pos(b, t) - table.first_position. Additional preconditions (checked):
/// every position in the range lies in [first_position, first_position +
/// rows), cos and sin have the same rows and >= pairs() columns.
/// The table must have been filled for f (not checked: the values are used
/// as given).
template <class T, class TT>
void rotate(const rope_frequencies& f, const basic_rope_table<TT>& table, heads_view<T> x, positions_view pos,
            token_range tokens, rotation_direction dir = rotation_direction::forward) {
  static_assert(!std::is_const_v<T>, "rotate: in-place rotation needs a mutable view");
  const detail::table_ref_t<TT> t{table.cos, table.sin, table.first_position};
  detail::rotate_entry<T, detail::default_kernel_path, TT>(f, &t, {x, x}, nullptr, pos, tokens,
                                                           dir == rotation_direction::inverse, "rotate");
}

/// Out-of-place rotation from a table.
template <class T, class TT>
void rotate(const rope_frequencies& f, const basic_rope_table<TT>& table, heads_view<const detail::identity_t<T>> in,
            heads_view<T> out, positions_view pos, token_range tokens,
            rotation_direction dir = rotation_direction::forward) {
  const detail::table_ref_t<TT> t{table.cos, table.sin, table.first_position};
  detail::rotate_entry<T, detail::default_kernel_path, TT>(f, &t, {in, out}, nullptr, pos, tokens,
                                                           dir == rotation_direction::inverse, "rotate");
}

/// q and k together from a table.
template <class T, class TT>
void rotate_qk(const rope_frequencies& f, const basic_rope_table<TT>& table, heads_view<T> q, heads_view<T> k,
               positions_view pos, token_range tokens, rotation_direction dir = rotation_direction::forward) {
  static_assert(!std::is_const_v<T>, "rotate_qk: in-place rotation needs a mutable view");
  const detail::table_ref_t<TT> t{table.cos, table.sin, table.first_position};
  const detail::io_pair<T> kk{k, k};
  detail::rotate_entry<T, detail::default_kernel_path, TT>(f, &t, {q, q}, &kk, pos, tokens,
                                                           dir == rotation_direction::inverse, "rotate_qk");
}

/// Out-of-place q and k from a table.
template <class T, class TT>
void rotate_qk(const rope_frequencies& f, const basic_rope_table<TT>& table,
               heads_view<const detail::identity_t<T>> q_in, heads_view<T> q_out,
               heads_view<const detail::identity_t<T>> k_in, heads_view<T> k_out, positions_view pos,
               token_range tokens, rotation_direction dir = rotation_direction::forward) {
  const detail::table_ref_t<TT> t{table.cos, table.sin, table.first_position};
  const detail::io_pair<T> kk{k_in, k_out};
  detail::rotate_entry<T, detail::default_kernel_path, TT>(f, &t, {q_in, q_out}, &kk, pos, tokens,
                                                           dir == rotation_direction::inverse, "rotate_qk");
}

}  // namespace longrope
