// llama2c: a small llama2.c-compatible transformer beside longrope. MIT License.
#pragma once

/// \file scaling.hpp
/// RoPE scaling methods for a llama2.c model, as longrope configs.
///
/// A model trained at L0 = model_config::seq_len runs at a context N with the
/// scale s = max(1, N / L0):
///   none      plain RoPE, theta_i = 10000^(-2i/d)
///   pi        linear interpolation, theta_i / s
///   ntk       static NTK-aware, base * s^(d/(d-2))
///   yarn      YaRN (beta_fast 32, beta_slow 1, original length L0) with its
///             attention factor 0.1 ln s + 1
///   longrope  explicit per-pair factors lambda_i (theta_i / lambda_i), used
///             at every length (short = long factors)
/// n_hat (the paper's start-token cutoff) applies to every method. The
/// attention factor multiplies cos and sin (logits scale by its square):
/// default 1 for none, pi, ntk and longrope, YaRN's own for yarn; an explicit
/// value overrides it for every method (for none / pi / ntk the same
/// frequencies are then expressed as LongRoPE factors lambda_i =
/// theta_i / inv_freq_i carrying that attention factor).
/// The layout is interleaved (llama2.c), rotary_dim = head_size.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <longrope/config.hpp>
#include <longrope/frequencies.hpp>

#include "checkpoint.hpp"

namespace llama2c {

enum class scaling_method { none, pi, ntk, yarn, longrope };

inline const char* to_string(scaling_method m) noexcept {
  switch (m) {
    case scaling_method::none: return "none";
    case scaling_method::pi: return "pi";
    case scaling_method::ntk: return "ntk";
    case scaling_method::yarn: return "yarn";
    case scaling_method::longrope: return "longrope";
  }
  return "unknown";
}

/// Parses "none", "pi", "ntk", "yarn", "longrope". Throws longrope::error
/// ("longrope.argument") naming the accepted values otherwise.
inline scaling_method parse_scaling_method(const std::string& s) {
  for (auto m : {scaling_method::none, scaling_method::pi, scaling_method::ntk, scaling_method::yarn,
                 scaling_method::longrope}) {
    if (s == to_string(m)) return m;
  }
  LONGROPE_THROW("longrope.argument", "method: expected none, pi, ntk, yarn or longrope, got '" + s + "'");
}

/// A scaling method with its parameters.
struct scaling {
  scaling_method method = scaling_method::none;
  std::vector<double> factors;              ///< longrope: head_size / 2 factors lambda_i > 0.
  std::int64_t n_hat = 0;                   ///< start-token cutoff (>= 0).
  std::optional<double> attention_factor;   ///< overrides the method's default.
  /// LongRoPE2's per-pair mscale (rope_config::pair_mscale), any method; empty: none.
  std::vector<double> pair_mscale;
};

/// The scale s = max(1, context / seq_len) used by pi, ntk and yarn.
inline double context_scale(const model_config& m, std::int64_t context) noexcept {
  const double s = static_cast<double>(context) / static_cast<double>(m.seq_len);
  return s > 1.0 ? s : 1.0;
}

/// The rope_config of `sc` for model m at `context` tokens (see the file
/// comment). Throws longrope::error: "longrope.argument" for context < 1,
/// "longrope.config" for a wrong factor count, non-positive factors, n_hat < 0
/// or a non-positive attention factor. O(head_size).
inline longrope::rope_config make_rope_config(const model_config& m, const scaling& sc, std::int64_t context) {
  if (context < 1) LONGROPE_THROW("longrope.argument", "context: must be >= 1, got " + std::to_string(context));
  longrope::rope_config c;
  c.head_dim = m.head_size();
  c.rotary_dim = m.head_size();
  c.base = 10000.0;
  c.layout = longrope::pair_layout::interleaved;
  c.n_hat = sc.n_hat;
  c.pair_mscale = sc.pair_mscale;
  const double s = context_scale(m, context);
  switch (sc.method) {
    case scaling_method::none: c.type = longrope::rope_type::none; break;
    case scaling_method::pi:
      c.type = longrope::rope_type::linear;
      c.factor = s;
      break;
    case scaling_method::ntk:
      c.type = longrope::rope_type::ntk;
      c.factor = s;
      break;
    case scaling_method::yarn:
      c.type = longrope::rope_type::yarn;
      c.yarn.factor = s;
      c.yarn.original_max_position = m.seq_len;
      c.yarn.attention_factor = sc.attention_factor;
      break;
    case scaling_method::longrope:
      c.type = longrope::rope_type::longrope;
      c.longrope.short_factor = sc.factors;
      c.longrope.long_factor = sc.factors;
      c.longrope.original_max_position = m.seq_len;
      c.longrope.attention_factor = sc.attention_factor.value_or(1.0);
      break;
  }
  if (sc.method != scaling_method::longrope && !sc.factors.empty()) {
    LONGROPE_THROW("longrope.argument", std::string("factors: only the longrope method takes factors, got method ") +
                                            to_string(sc.method));
  }
  if (sc.attention_factor && (sc.method == scaling_method::none || sc.method == scaling_method::pi ||
                              sc.method == scaling_method::ntk)) {
    // The same frequencies as LongRoPE factors, which carry an attention factor.
    const longrope::rope_frequencies f(c);
    longrope::rope_config l = c;
    l.type = longrope::rope_type::longrope;
    l.longrope.short_factor = f.rescale_factors();
    l.longrope.long_factor = f.rescale_factors();
    l.longrope.original_max_position = m.seq_len;
    l.longrope.attention_factor = *sc.attention_factor;
    c = l;
  }
  c.validate();
  return c;
}

/// rope_frequencies of make_rope_config, for sequences of `context` tokens
/// (LongRoPE factors apply at every length: short = long).
inline longrope::rope_frequencies make_frequencies(const model_config& m, const scaling& sc, std::int64_t context) {
  return longrope::rope_frequencies(make_rope_config(m, sc, context), {context, longrope::factor_policy::always_long});
}

}  // namespace llama2c
