// longrope: header-only LongRoPE positional interpolation. MIT License.
#pragma once

/// \file config.hpp
/// The typed RoPE configuration: geometry (head_dim, rotary_dim, base, layout)
/// and one scaling method with its parameters, following transformers'
/// `rope_scaling` semantics. A rope_config is plain data; validate() checks it
/// and rope_frequencies (frequencies.hpp) turns it into numbers.
///
/// Layouts of the rotary channels of one head vector (d = rotary_dim, pairs
/// i = 0 .. d/2-1; channels d .. head_dim-1 pass through untouched):
///
///     half_split  (GPT-NeoX, transformers' rotate_half, Phi-3):
///         [ x0 x1 ... x(d/2-1) | y0 y1 ... y(d/2-1) | pass-through ]
///         pair i = channels (i, i + d/2)         cos/sin table row: [c0 c1 ... | s0 s1 ...]
///     interleaved (GPT-J, Meta llama, llama2.c, ggml NORMAL):
///         [ x0 y0 x1 y1 ... x(d/2-1) y(d/2-1) | pass-through ]
///         pair i = channels (2i, 2i + 1)
///
/// Rotating pair i of a token at position p by angle a = p * inv_freq[i]:
///     x' = x cos a - y sin a,   y' = x sin a + y cos a.

#include <cmath>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "error.hpp"

namespace longrope {

/// Where the two channels of rotary pair i sit inside a head vector.
enum class pair_layout {
  half_split,   ///< (i, i + rotary_dim/2): transformers rotate_half, GPT-NeoX, Phi-3.
  interleaved,  ///< (2i, 2i + 1): GPT-J, Meta llama, llama2.c, ggml's default.
};

/// The frequency scaling method (transformers' rope_type).
enum class rope_type {
  none,      ///< plain RoPE: inv_freq_i = base^(-2i/d).
  linear,    ///< position interpolation (PI): inv_freq_i / factor.
  ntk,       ///< static NTK-aware: base' = base * factor^(d/(d-2)) (the LongRoPE paper's baseline).
  dynamic,   ///< dynamic NTK: NTK with a factor grown from the current sequence length.
  yarn,      ///< YaRN: per-pair ramp between PI and extrapolation, plus an attention factor.
  llama3,    ///< Llama 3.1: wavelength bands between PI and extrapolation.
  longrope,  ///< LongRoPE: explicit per-pair rescale factors (short and long sets), attention factor.
  proportional,  ///< transformers v5 (Gemma 4): the first k pairs base^(-2i/d) / factor, the other pairs 0.
};

/// Which of LongRoPE's two factor sets is in use (none for other methods).
enum class factor_set { none, short_factors, long_factors };

/// How an engine chooses between LongRoPE's short and long factors. Engines
/// disagree (see docs/methods.md):
///  - by_sequence_length (transformers): long iff the current sequence length
///    (max position + 1) > original_max_position_embeddings, re-decided every
///    forward. Keys cached under the short factors become stale when a sequence
///    crosses the original length: re-prefill, or re-rotate them (rerotate.hpp).
///  - by_context_capacity (vLLM max_model_len, llama.cpp n_ctx_seq): long iff the
///    context the engine allocated per sequence > original length, decided once;
///    short prompts then run with the long factors, the cache is never stale.
///  - always_long / always_short: fixed, the cache is never stale.
enum class factor_policy { by_sequence_length, by_context_capacity, always_long, always_short };

/// The float32 arithmetic used by the reference implementations, or exact.
enum class angle_precision {
  exact,    ///< angle = p * inv_freq in double, reduced mod 2*pi, then cos/sin: error ~1e-7 at any p < 2^24.
  float32,  ///< transformers' order: float32 inv_freq, float32 product p * inv_freq, float32 cos/sin.
};

/// YaRN parameters (transformers' rope_scaling for rope_type "yarn").
struct yarn_params {
  double factor = 1.0;                        ///< scale s > 0.
  std::int64_t original_max_position = 0;     ///< L0 > 0 (transformers: original_max_position_embeddings, else max_position_embeddings).
  double beta_fast = 32.0;                    ///< rotations at the high-frequency end of the ramp.
  double beta_slow = 1.0;                     ///< rotations at the low-frequency end of the ramp.
  std::optional<double> mscale;               ///< DeepSeek-style mscale (with mscale_all_dim).
  std::optional<double> mscale_all_dim;
  std::optional<double> attention_factor;     ///< overrides every default when set.
  bool truncate = true;                       ///< floor/ceil the correction range (transformers' default).
};

/// Llama 3.1 parameters (rope_type "llama3").
struct llama3_params {
  double factor = 8.0;
  double low_freq_factor = 1.0;
  double high_freq_factor = 4.0;
  std::int64_t original_max_position = 8192;
};

/// One of several LongRoPE factor sets searched for different target lengths
/// (the official LongRoPE code keeps one factor file per target length).
struct longrope_bucket {
  std::int64_t max_length = 0;                ///< used for lengths <= max_length (> 0, strictly increasing).
  std::vector<double> factors;                ///< rotary_dim/2 rescale factors (> 0).
  std::optional<double> attention_factor;     ///< this set's attention factor; unset: the longrope rule.
};

/// LongRoPE parameters (rope_type "longrope", legacy "su").
struct longrope_params {
  std::vector<double> short_factor;           ///< rotary_dim/2 rescale factors lambda_i (> 0) for short contexts.
  std::vector<double> long_factor;            ///< rotary_dim/2 rescale factors for long contexts.
  std::int64_t original_max_position = 0;     ///< L0: the pre-trained context (original_max_position_embeddings).
  /// The scale s used for the default attention factor, when set. Unset:
  /// s = max_position_embeddings / L0 (rope_config::max_position_embeddings;
  /// s = 1 when that is 0). The JSON reader (json.hpp) applies transformers'
  /// rules: with original_max_position_embeddings in the config, s is
  /// max_position_embeddings / L0 (rope_scaling form; rope_parameters: only
  /// when factor is absent), otherwise rope_scaling.factor (1 when absent).
  std::optional<double> factor;
  std::optional<double> attention_factor;     ///< overrides sqrt(1 + ln s / ln L0) when set.
  /// vLLM's short_mscale / long_mscale: the attention factor of each set when
  /// set (they win over attention_factor for their set).
  std::optional<double> short_mscale;
  std::optional<double> long_mscale;
  /// More than two factor sets picked by length (see frequency_options): when
  /// non-empty they replace short/long selection; the set used for length L is
  /// the first bucket with L <= max_length, the last one beyond.
  std::vector<longrope_bucket> buckets;
};

/// transformers v5 "proportional" (Gemma 4's full-attention layers): the
/// whole head rotates (rotary_dim = head_dim, half_split), pairs i < rotated_pairs
/// at base^(-2i/head_dim) / factor, the other pairs at frequency 0 (identity).
struct proportional_params {
  int rotated_pairs = 0;                      ///< int(partial_rotary_factor * head_dim // 2); 0 means all pairs.
};

/// A model's complete RoPE configuration.
///
/// Fields used by each method:
///   none:      -
///   linear:    factor
///   ntk:       factor
///   dynamic:   factor, max_position_embeddings (the trained length the factor grows from)
///   yarn:      yarn
///   llama3:    llama3
///   longrope:  longrope (and max_position_embeddings for the default scale)
/// n_hat (the LongRoPE paper's start-token cutoff) applies to every method:
/// positions p < n_hat keep the unscaled angles p * base^(-2i/d).
struct rope_config {
  int head_dim = 0;                         ///< channels per head (> 0).
  int rotary_dim = 0;                       ///< rotated channels: even, 2 <= rotary_dim <= head_dim. 0 means head_dim.
  double base = 10000.0;                    ///< rope_theta (> 0, finite, != 1).
  pair_layout layout = pair_layout::half_split;
  rope_type type = rope_type::none;
  double factor = 1.0;                      ///< linear / ntk / dynamic scale (> 0).
  std::int64_t max_position_embeddings = 0;  ///< dynamic: trained length; longrope: target length.
  yarn_params yarn;
  llama3_params llama3;
  longrope_params longrope;
  proportional_params proportional;         ///< proportional: which pairs rotate (factor scales them).
  std::int64_t n_hat = 0;                   ///< start-token cutoff, >= 0.
  /// LongRoPE2's per-pair attention temperature (mscale), for every method.
  /// Empty (the default): cos and sin of every pair are multiplied by the one
  /// scalar attention factor. Otherwise pairs() values m_i > 0: cos and sin of
  /// pair i are multiplied by attention_factor * m_i (LongRoPE2 sets the
  /// attention factor to 1 so m_i is the whole temperature of pair i). All
  /// ones gives exactly the scalar behaviour. No transformers config carries it.
  std::vector<double> pair_mscale;

  /// rotary_dim with 0 resolved to head_dim.
  int effective_rotary_dim() const noexcept { return rotary_dim == 0 ? head_dim : rotary_dim; }
  /// Number of rotary pairs, effective_rotary_dim() / 2.
  int pairs() const noexcept { return effective_rotary_dim() / 2; }

  /// Checks every field the chosen method uses. Throws longrope::error with id
  /// "longrope.config" naming the field: non-positive or non-finite values,
  /// odd or out-of-range rotary_dim, a wrong factor count, an unknown method.
  /// O(rotary_dim).
  void validate() const;
};

/// Name of a method as transformers spells rope_type ("default" for none).
inline const char* to_string(rope_type t) noexcept {
  switch (t) {
    case rope_type::none: return "default";
    case rope_type::linear: return "linear";
    case rope_type::ntk: return "ntk";
    case rope_type::dynamic: return "dynamic";
    case rope_type::yarn: return "yarn";
    case rope_type::llama3: return "llama3";
    case rope_type::longrope: return "longrope";
    case rope_type::proportional: return "proportional";
  }
  return "unknown";
}

inline const char* to_string(pair_layout l) noexcept {
  return l == pair_layout::half_split ? "half_split" : "interleaved";
}

inline const char* to_string(factor_set s) noexcept {
  switch (s) {
    case factor_set::none: return "none";
    case factor_set::short_factors: return "short";
    case factor_set::long_factors: return "long";
  }
  return "unknown";
}

// ---------------------------------------------------------------------------
// Implementation

namespace detail {

inline void config_fail(const std::string& field, const std::string& what) {
  LONGROPE_THROW("longrope.config", field + ": " + what);
}

inline void require_positive_finite(double v, const char* field) {
  if (!std::isfinite(v)) config_fail(field, "must be finite, got " + std::to_string(v));
  if (!(v > 0.0)) config_fail(field, "must be > 0, got " + std::to_string(v));
}

inline void require_factor_vector(const std::vector<double>& f, int pairs, const char* field) {
  if (static_cast<int>(f.size()) != pairs) {
    config_fail(field, "expected " + std::to_string(pairs) + " values (rotary_dim / 2), got " +
                           std::to_string(f.size()));
  }
  for (std::size_t i = 0; i < f.size(); ++i) {
    if (std::isfinite(f[i]) && f[i] > 0.0) continue;  // the name is built only on failure (no allocation per factor)
    const std::string name = std::string(field) + "[" + std::to_string(i) + "]";
    require_positive_finite(f[i], name.c_str());
  }
}

}  // namespace detail

inline void rope_config::validate() const {
  using detail::config_fail;
  if (head_dim <= 0) config_fail("head_dim", "must be > 0, got " + std::to_string(head_dim));
  const int d = effective_rotary_dim();
  if (d < 2 || d > head_dim) {
    config_fail("rotary_dim", "must be in [2, head_dim = " + std::to_string(head_dim) + "], got " +
                                  std::to_string(d));
  }
  if (d % 2 != 0) config_fail("rotary_dim", "must be even, got " + std::to_string(d));
  detail::require_positive_finite(base, "base");
  if (base == 1.0) config_fail("base", "must not be 1 (all frequencies would be equal)");
  if (layout != pair_layout::half_split && layout != pair_layout::interleaved) {
    config_fail("layout", "unknown pair layout");
  }
  if (n_hat < 0) config_fail("n_hat", "must be >= 0, got " + std::to_string(n_hat));
  if (!pair_mscale.empty()) detail::require_factor_vector(pair_mscale, pairs(), "pair_mscale");
  switch (type) {
    case rope_type::none: break;
    case rope_type::linear:
      detail::require_positive_finite(factor, "factor");
      break;
    case rope_type::ntk:
      detail::require_positive_finite(factor, "factor");
      if (d <= 2) config_fail("rotary_dim", "NTK scaling needs rotary_dim > 2 (its exponent is d / (d - 2))");
      break;
    case rope_type::dynamic:
      detail::require_positive_finite(factor, "factor");
      if (d <= 2) config_fail("rotary_dim", "dynamic NTK needs rotary_dim > 2 (its exponent is d / (d - 2))");
      if (max_position_embeddings <= 0) {
        config_fail("max_position_embeddings", "dynamic NTK needs the trained length (> 0), got " +
                                                   std::to_string(max_position_embeddings));
      }
      break;
    case rope_type::yarn:
      detail::require_positive_finite(yarn.factor, "yarn.factor");
      if (yarn.original_max_position <= 0) {
        config_fail("yarn.original_max_position", "must be > 0, got " +
                                                      std::to_string(yarn.original_max_position));
      }
      detail::require_positive_finite(yarn.beta_fast, "yarn.beta_fast");
      detail::require_positive_finite(yarn.beta_slow, "yarn.beta_slow");
      if (yarn.mscale) detail::require_positive_finite(*yarn.mscale, "yarn.mscale");
      if (yarn.mscale_all_dim) detail::require_positive_finite(*yarn.mscale_all_dim, "yarn.mscale_all_dim");
      if (yarn.attention_factor) detail::require_positive_finite(*yarn.attention_factor, "yarn.attention_factor");
      break;
    case rope_type::llama3:
      detail::require_positive_finite(llama3.factor, "llama3.factor");
      detail::require_positive_finite(llama3.low_freq_factor, "llama3.low_freq_factor");
      detail::require_positive_finite(llama3.high_freq_factor, "llama3.high_freq_factor");
      if (!(llama3.high_freq_factor > llama3.low_freq_factor)) {
        config_fail("llama3.high_freq_factor", "must be > low_freq_factor");
      }
      if (llama3.original_max_position <= 0) {
        config_fail("llama3.original_max_position", "must be > 0, got " +
                                                        std::to_string(llama3.original_max_position));
      }
      break;
    case rope_type::longrope:
      detail::require_factor_vector(longrope.short_factor, pairs(), "longrope.short_factor");
      detail::require_factor_vector(longrope.long_factor, pairs(), "longrope.long_factor");
      if (longrope.original_max_position <= 0) {
        config_fail("longrope.original_max_position", "must be > 0, got " +
                                                          std::to_string(longrope.original_max_position));
      }
      if (longrope.factor) detail::require_positive_finite(*longrope.factor, "longrope.factor");
      if (longrope.attention_factor) {
        detail::require_positive_finite(*longrope.attention_factor, "longrope.attention_factor");
      }
      if (max_position_embeddings < 0) {
        config_fail("max_position_embeddings", "must be >= 0, got " + std::to_string(max_position_embeddings));
      }
      if (longrope.short_mscale) detail::require_positive_finite(*longrope.short_mscale, "longrope.short_mscale");
      if (longrope.long_mscale) detail::require_positive_finite(*longrope.long_mscale, "longrope.long_mscale");
      for (std::size_t b = 0; b < longrope.buckets.size(); ++b) {
        const auto& bk = longrope.buckets[b];
        const std::string name = "longrope.buckets[" + std::to_string(b) + "]";
        if (bk.max_length <= 0 || (b > 0 && bk.max_length <= longrope.buckets[b - 1].max_length)) {
          config_fail(name + ".max_length", "must be > 0 and strictly increasing, got " + std::to_string(bk.max_length));
        }
        detail::require_factor_vector(bk.factors, pairs(), (name + ".factors").c_str());
        if (bk.attention_factor) detail::require_positive_finite(*bk.attention_factor, (name + ".attention_factor").c_str());
      }
      break;
    case rope_type::proportional:
      detail::require_positive_finite(factor, "factor");
      if (proportional.rotated_pairs < 0 || proportional.rotated_pairs > pairs()) {
        config_fail("proportional.rotated_pairs", "must be in [0, " + std::to_string(pairs()) + "], got " +
                                                      std::to_string(proportional.rotated_pairs));
      }
      break;
    default:
      config_fail("type", "unknown rope_type " + std::to_string(static_cast<int>(type)));
  }
}

}  // namespace longrope
