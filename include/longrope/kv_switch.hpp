// longrope: header-only LongRoPE positional interpolation. MIT License.
#pragma once

/// \file kv_switch.hpp
/// The short/long factor switch done for the engine: when a sequence grows (or
/// shrinks) across the point where its factor policy changes LongRoPE's factor
/// set, the keys already in its KV cache were rotated with the old set and are
/// stale. switch_kv re-rotates them in place (rerotate.hpp: per pair a rotation
/// by p (f_i^new - f_i^old), vectorised like a prefill from a table), exactly
/// when the set changes, and says which set is active now. transformers' Phi-3
/// re-prefills instead; vLLM and llama.cpp avoid the question by choosing the
/// long set for every sequence of a long-context engine (docs/engines.md).
///
/// Usage (one sequence, by_sequence_length, cache head-major [kv_heads][capacity][head_dim]):
///
///     const longrope::factor_switch sw(cfg, longrope::factor_policy::by_sequence_length);
///     // before the forward that takes the sequence from n_old to n_new tokens:
///     for (int layer = 0; layer < n_layers; ++layer) {
///       auto keys = longrope::head_major(k_cache[layer], 1, kv_heads, capacity, head_dim);
///       keys.tokens = n_old;  // the cached part
///       longrope::switch_kv(sw, keys, {pos.data(), 0}, n_old, n_new);
///     }
///     const auto& f = sw.frequencies_for(n_new);   // rotate the new tokens' q and k with this
///
/// Which set a length gets (factor_switch::set_for): by_sequence_length long
/// iff length > original_max_position (transformers); by_context_capacity long
/// iff the capacity given at construction > original_max_position, for every
/// length (vLLM, llama.cpp: never switches); always_long / always_short fixed.
/// Methods other than LongRoPE have one set (factor_set::none) and never switch.

#include <cstdint>
#include <string>

#include "config.hpp"
#include "error.hpp"
#include "frequencies.hpp"
#include "rerotate.hpp"
#include "view.hpp"

namespace longrope {

/// Both factor sets of one rope_config and the policy that picks one from a
/// sequence length. Immutable after construction; share it across threads.
class factor_switch {
 public:
  /// Builds the short and long frequencies of cfg (for a LongRoPE config; one
  /// set for other methods, built for seq_len = capacity). capacity is the
  /// per-sequence context the engine allocated (used by by_context_capacity;
  /// 0 = unknown = short). Throws longrope::error: "longrope.config" for an
  /// invalid cfg, "longrope.argument" for a negative capacity. O(rotary_dim);
  /// allocates the two rope_frequencies.
  factor_switch(const rope_config& cfg, factor_policy policy, std::int64_t capacity = 0)
      : policy_(policy),
        capacity_(capacity),
        longrope_(cfg.type == rope_type::longrope),
        short_(cfg, {capacity, longrope_ ? factor_policy::always_short : policy}),
        long_(cfg, {capacity, longrope_ ? factor_policy::always_long : policy}) {}

  factor_policy policy() const noexcept { return policy_; }
  std::int64_t capacity() const noexcept { return capacity_; }
  /// L0 (longrope.original_max_position) for LongRoPE, 0 otherwise.
  std::int64_t original_length() const noexcept {
    return longrope_ ? short_.config().longrope.original_max_position : 0;
  }

  /// The set a sequence of `length` tokens (max position + 1) runs with.
  /// factor_set::none for methods other than LongRoPE. O(1).
  factor_set set_for(std::int64_t length) const noexcept {
    if (!longrope_) return factor_set::none;
    const std::int64_t l = policy_ == factor_policy::by_context_capacity ? capacity_ : length;
    return select_factor_set(policy_, original_length(), l);
  }

  /// The frequencies of a set (none: the single set of a non-LongRoPE config).
  const rope_frequencies& frequencies(factor_set s) const noexcept {
    return s == factor_set::long_factors ? long_ : short_;
  }
  /// frequencies(set_for(length)): what to rotate a forward at that length with.
  const rope_frequencies& frequencies_for(std::int64_t length) const noexcept {
    return frequencies(set_for(length));
  }

 private:
  factor_policy policy_;
  std::int64_t capacity_;
  bool longrope_;
  rope_frequencies short_;
  rope_frequencies long_;
};

/// One row of a batched switch: tokens [0, cached) of the row hold keys
/// rotated with set_for(old_length); the next forward runs at new_length.
struct kv_row {
  std::ptrdiff_t cached = 0;
  std::int64_t old_length = 0;
  std::int64_t new_length = 0;
};

/// Makes the cached keys of one sequence right for new_length: if
/// sw.set_for(old_length) != sw.set_for(new_length), every token of `keys`
/// (all batch rows, which share the lengths) is re-rotated from the old set's
/// frequencies to the new set's (rerotate); otherwise nothing is touched.
/// Returns sw.set_for(new_length). T is float, double, Eigen::half or
/// Eigen::bfloat16; any heads_view layout.
///
/// Preconditions (checked before any element is touched, longrope::error
/// "longrope.argument"): old_length, new_length >= 0, and rerotate's (geometry,
/// extents, strides, positions in range) when a re-rotation is due.
/// Complexity: O(1) without a change; rerotate's cost with one. No allocation.
template <class T>
factor_set switch_kv(const factor_switch& sw, heads_view<T> keys, positions_view pos, std::int64_t old_length,
                     std::int64_t new_length) {
  if (old_length < 0 || new_length < 0) {
    detail::argument_fail("switch_kv: lengths must be >= 0, got " + std::to_string(old_length) + " -> " +
                          std::to_string(new_length));
  }
  const factor_set from = sw.set_for(old_length);
  const factor_set to = sw.set_for(new_length);
  if (from != to) rerotate(sw.frequencies(from), sw.frequencies(to), keys, pos);
  return to;
}

/// Batched: row b of `keys` (and of `pos`) is one sequence with its own
/// lengths rows[b]; only tokens [0, rows[b].cached) of a row are read or
/// written, so rows of different lengths share one padded cache view. Each
/// row switches independently (one factor set per row); active[b], when
/// active is not null, receives sw.set_for(rows[b].new_length).
///
/// Preconditions (all rows checked before any element is touched,
/// "longrope.argument"): rows non-null when keys.batch > 0, every length >= 0,
/// 0 <= cached <= keys.tokens, and rerotate's for each row that switches.
/// Complexity: the sum of the switching rows' rerotate costs. No allocation.
template <class T>
void switch_kv(const factor_switch& sw, heads_view<T> keys, positions_view pos, const kv_row* rows,
               factor_set* active) {
  if (keys.batch < 0) detail::argument_fail("switch_kv: negative batch");
  if (keys.batch > 0 && rows == nullptr) detail::argument_fail("switch_kv: null rows");
  auto row_view = [&](std::ptrdiff_t b) {
    heads_view<T> v = keys;
    v.data = keys.data == nullptr ? nullptr : keys.at(b, 0, 0);
    v.batch = 1;
    v.tokens = rows[b].cached;
    return v;
  };
  auto row_pos = [&](std::ptrdiff_t b) {
    return positions_view{pos.data == nullptr ? nullptr : pos.data + b * pos.batch_stride, 0};
  };
  for (std::ptrdiff_t b = 0; b < keys.batch; ++b) {
    const kv_row& r = rows[b];
    if (r.old_length < 0 || r.new_length < 0 || r.cached < 0 || r.cached > keys.tokens) {
      detail::argument_fail("switch_kv: row " + std::to_string(b) + " has cached " + std::to_string(r.cached) +
                            " (view holds " + std::to_string(keys.tokens) + "), lengths " +
                            std::to_string(r.old_length) + " -> " + std::to_string(r.new_length));
    }
    const factor_set from = sw.set_for(r.old_length);
    const factor_set to = sw.set_for(r.new_length);
    if (from != to) {
      if (pos.batch_stride < 0) detail::argument_fail("switch_kv: negative positions.batch_stride");
      detail::rerotate_check(sw.frequencies(from), sw.frequencies(to), row_view(b), row_pos(b),
                             token_range{0, r.cached});
    }
  }
  for (std::ptrdiff_t b = 0; b < keys.batch; ++b) {
    const kv_row& r = rows[b];
    const factor_set from = sw.set_for(r.old_length);
    const factor_set to = sw.set_for(r.new_length);
    if (from != to) rerotate(sw.frequencies(from), sw.frequencies(to), row_view(b), row_pos(b));
    if (active != nullptr) active[b] = to;
  }
}

}  // namespace longrope
