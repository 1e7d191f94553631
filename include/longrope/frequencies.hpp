// longrope: header-only LongRoPE positional interpolation. MIT License.
#pragma once

/// \file frequencies.hpp
/// rope_frequencies: the immutable, thread-safe result of a rope_config for one
/// context: the inverse frequencies of every rotary pair (in double), the
/// per-pair rescale factors lambda_i = theta_i / inv_freq_i, the attention
/// factor (and LongRoPE2's per-pair mscale) and the n_hat cutoff. Everything downstream (tables, rotation,
/// re-rotation, the search) reads one of these.
///
/// Semantics follow transformers' ROPE_INIT_FUNCTIONS exactly, in double
/// (d = rotary_dim, theta_i = base^(-2i/d), s = scale, L0 = original length):
///   none     inv_i = theta_i
///   linear   inv_i = theta_i / s
///   ntk      inv_i = (base * s^(d/(d-2)))^(-2i/d)
///   dynamic  L = max(seq_len, max_pos); base' = base * (s L / max_pos - (s - 1))^(d/(d-2))
///   yarn     ramp between theta_i / s and theta_i over correction dims; attention factor m(s)
///   llama3   wavelength bands: > L0/low_ff: theta_i / s; < L0/high_ff: theta_i; smooth between
///   longrope inv_i = theta_i / lambda_i with lambda = short or long factors (see factor_policy);
///            attention factor: the set's mscale (vLLM), else given, else sqrt(1 + ln s / ln L0)
///            (1 when s <= 1). With buckets: the first bucket whose max_length >= length.
///   proportional  i < k: theta_i / s; i >= k: 0 (theta_i reported as 0 too, lambda_i as 1)
/// See docs/methods.md for each formula's source and the engines that use it.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <optional>
#include <vector>

#include "config.hpp"
#include "error.hpp"

namespace longrope {

/// The context a rope_frequencies is built for.
struct frequency_options {
  /// The sequence length the model runs at (max position + 1), or the context
  /// capacity under factor_policy::by_context_capacity. 0 means "unknown": the
  /// short LongRoPE factors and no dynamic growth, as transformers at start-up.
  std::int64_t seq_len = 0;
  /// LongRoPE only: how the factor set is chosen from seq_len.
  factor_policy policy = factor_policy::by_sequence_length;
};

/// Chooses LongRoPE's factor set. by_sequence_length and by_context_capacity
/// apply the same test, long iff length > original_length, to different
/// lengths (see factor_policy). length 0 means unknown and selects short.
/// O(1), noexcept.
inline factor_set select_factor_set(factor_policy policy, std::int64_t original_length,
                                    std::int64_t length) noexcept {
  switch (policy) {
    case factor_policy::always_long: return factor_set::long_factors;
    case factor_policy::always_short: return factor_set::short_factors;
    case factor_policy::by_sequence_length:
    case factor_policy::by_context_capacity:
      return length > original_length ? factor_set::long_factors : factor_set::short_factors;
  }
  return factor_set::short_factors;
}

/// YaRN's attention-scale helper m(s, k) = 0.1 k ln s + 1 (1 when s <= 1).
inline double yarn_get_mscale(double scale, double mscale = 1.0) noexcept {
  return scale <= 1.0 ? 1.0 : 0.1 * mscale * std::log(scale) + 1.0;
}

/// Immutable frequencies of one rope_config in one context. All members are
/// const after construction: share one object across threads freely.
class rope_frequencies {
 public:
  /// Validates cfg (rope_config::validate) and computes everything in double.
  /// Throws longrope::error ("longrope.config") on an invalid config, and
  /// ("longrope.argument") on a negative seq_len. A config that validates but
  /// would give a non-finite or non-positive inverse frequency, rescale factor
  /// or attention factor (original_max_position_embeddings = 1 with longrope's
  /// ln L0 = 0, a subnormal factor, yarn with base < 1 and a huge beta_fast)
  /// is refused too ("longrope.config", naming the keys it comes from), so a
  /// rope_frequencies never holds inf or NaN; so is an attention factor above
  /// 1e6 (its float tables would overflow). O(rotary_dim); allocates
  /// four vectors of rotary_dim/2 doubles.
  explicit rope_frequencies(const rope_config& cfg, const frequency_options& opt = {});

  const rope_config& config() const noexcept { return cfg_; }
  int head_dim() const noexcept { return cfg_.head_dim; }
  int rotary_dim() const noexcept { return cfg_.effective_rotary_dim(); }
  /// rotary_dim / 2.
  int pairs() const noexcept { return cfg_.pairs(); }
  pair_layout layout() const noexcept { return cfg_.layout; }
  rope_type type() const noexcept { return cfg_.type; }

  /// Scaled inverse frequencies inv_freq[i], i < pairs(), radians per position.
  const std::vector<double>& inv_freq() const noexcept { return inv_freq_; }
  /// Unscaled theta_i = base^(-2i/d), used for positions below n_hat.
  const std::vector<double>& theta() const noexcept { return theta_; }
  /// lambda_i = theta_i / inv_freq_i (1 = extrapolation, s = PI for that pair).
  const std::vector<double>& rescale_factors() const noexcept { return rescale_; }
  /// Multiplier applied to cos and sin on the rotary dims (logits scale by its square).
  double attention_factor() const noexcept { return attention_factor_; }
  /// Per-pair multiplier of cos and sin: amplitude()[i] = attention_factor() *
  /// pair_mscale[i] (== attention_factor() for every pair without pair_mscale).
  const std::vector<double>& amplitude() const noexcept { return amplitude_; }
  /// True iff the config carries a per-pair mscale (rope_config::pair_mscale).
  bool has_pair_mscale() const noexcept { return !cfg_.pair_mscale.empty(); }
  /// Positions p < n_hat() use theta_i instead of inv_freq_i.
  std::int64_t n_hat() const noexcept { return cfg_.n_hat; }
  /// LongRoPE: the factor set in use; factor_set::none for other methods.
  factor_set active_factor_set() const noexcept { return set_; }
  /// LongRoPE with buckets: the index of the bucket in use (its max_length >
  /// original length reports factor_set::long_factors); -1 otherwise.
  int active_bucket() const noexcept { return bucket_; }

  /// The frequency used for pair i at position p: theta_i if p < n_hat, else inv_freq_i.
  double frequency(std::int64_t position, int pair) const noexcept {
    LONGROPE_ASSERT(pair >= 0 && pair < pairs());
    const auto i = static_cast<std::size_t>(pair);
    return position < cfg_.n_hat ? theta_[i] : inv_freq_[i];
  }

  /// The unreduced angle p * frequency(p, i) in double (|error| <= 0.5 ulp of the result).
  double angle(std::int64_t position, int pair) const noexcept {
    return static_cast<double>(position) * frequency(position, pair);
  }

  /// The largest angle at which longrope keeps its documented accuracy: 2^29 rad.
  /// Below it the double angle p * f_i is within ulp/2 <= 3e-8 rad of the exact
  /// product and float tables stay within 2e-7 of cos/sin of it (table.hpp);
  /// at 2^45 the angle's own rounding already costs 4e-3.
  static constexpr double max_angle = 536870912.0;
  /// The largest position whose angles stay at or below max_angle for every pair
  /// (2^29 = 536870912 for plain RoPE, whose pair 0 turns 1 rad per position).
  /// Tables and rotations reject larger positions with longrope::error
  /// ("longrope.argument") instead of returning inaccurate values. O(1):
  /// computed at construction.
  std::int64_t max_position() const noexcept { return max_position_; }

 private:
  rope_config cfg_;
  std::vector<double> theta_;
  std::vector<double> inv_freq_;
  std::vector<double> rescale_;
  double attention_factor_ = 1.0;
  std::vector<double> amplitude_;
  factor_set set_ = factor_set::none;
  int bucket_ = -1;
  std::int64_t max_position_ = 0;
};

// ---------------------------------------------------------------------------
// Implementation

namespace detail {

/// base^(-2i/d) for i < d/2, as transformers' 1 / base**(arange(0, d, 2) / d).
inline std::vector<double> plain_inv_freq(double base, int d) {
  std::vector<double> v(static_cast<std::size_t>(d / 2));
  for (int i = 0; i < d / 2; ++i) {
    v[static_cast<std::size_t>(i)] = 1.0 / std::pow(base, static_cast<double>(2 * i) / d);
  }
  return v;
}

/// YaRN: dimension index at which a wavelength makes num_rotations turns in L0.
inline double yarn_correction_dim(double num_rotations, int d, double base, double l0) {
  const double pi = 3.14159265358979323846;
  return (d * std::log(l0 / (num_rotations * 2.0 * pi))) / (2.0 * std::log(base));
}

/// The bucket for a length: always_short the first, always_long the last,
/// otherwise the first with length <= max_length (length 0: the first), the
/// last beyond them all.
inline int select_bucket(const std::vector<longrope_bucket>& b, factor_policy policy, std::int64_t length) noexcept {
  const int last = static_cast<int>(b.size()) - 1;
  if (policy == factor_policy::always_short) return 0;
  if (policy == factor_policy::always_long) return last;
  for (int k = 0; k <= last; ++k) {
    if (length <= b[static_cast<std::size_t>(k)].max_length) return k;
  }
  return last;
}

}  // namespace detail

inline rope_frequencies::rope_frequencies(const rope_config& cfg, const frequency_options& opt)
    : cfg_(cfg) {
  cfg_.validate();
  if (opt.seq_len < 0) {
    LONGROPE_THROW("longrope.argument", "frequency_options.seq_len: must be >= 0, got " +
                                            std::to_string(opt.seq_len));
  }
  const int d = cfg_.effective_rotary_dim();
  const int n = d / 2;
  const double dd = static_cast<double>(d);
  theta_ = detail::plain_inv_freq(cfg_.base, d);
  inv_freq_ = theta_;
  auto at = [](std::vector<double>& v, int i) -> double& { return v[static_cast<std::size_t>(i)]; };

  switch (cfg_.type) {
    case rope_type::none: break;
    case rope_type::linear:
      for (auto& f : inv_freq_) f /= cfg_.factor;
      break;
    case rope_type::ntk: {
      const double base2 = cfg_.base * std::pow(cfg_.factor, dd / (dd - 2.0));
      inv_freq_ = detail::plain_inv_freq(base2, d);
      break;
    }
    case rope_type::dynamic: {
      // transformers' _compute_dynamic_ntk_parameters: seq_len is clamped from
      // below to max_position_embeddings, so short sequences are unscaled.
      const double maxp = static_cast<double>(cfg_.max_position_embeddings);
      const double len = std::max(static_cast<double>(opt.seq_len), maxp);
      const double s = cfg_.factor;
      const double base2 = cfg_.base * std::pow((s * len / maxp) - (s - 1.0), dd / (dd - 2.0));
      inv_freq_ = detail::plain_inv_freq(base2, d);
      break;
    }
    case rope_type::yarn: {
      const auto& y = cfg_.yarn;
      const double l0 = static_cast<double>(y.original_max_position);
      double low = detail::yarn_correction_dim(y.beta_fast, d, cfg_.base, l0);
      double high = detail::yarn_correction_dim(y.beta_slow, d, cfg_.base, l0);
      if (y.truncate) {
        low = std::floor(low);
        high = std::ceil(high);
      }
      low = std::max(low, 0.0);
      high = std::min(high, dd - 1.0);
      if (low == high) high += 0.001;  // transformers: avoid a division by zero
      for (int i = 0; i < n; ++i) {
        const double ramp = std::clamp((static_cast<double>(i) - low) / (high - low), 0.0, 1.0);
        // ramp 0 (high frequencies) extrapolates, ramp 1 interpolates.
        at(inv_freq_, i) = (at(theta_, i) / y.factor) * ramp + at(theta_, i) * (1.0 - ramp);
      }
      if (y.attention_factor) {
        attention_factor_ = *y.attention_factor;
      } else if (y.mscale && y.mscale_all_dim && *y.mscale != 0.0 && *y.mscale_all_dim != 0.0) {
        attention_factor_ = yarn_get_mscale(y.factor, *y.mscale) / yarn_get_mscale(y.factor, *y.mscale_all_dim);
      } else {
        attention_factor_ = yarn_get_mscale(y.factor);
      }
      break;
    }
    case rope_type::llama3: {
      const auto& l = cfg_.llama3;
      const double pi = 3.14159265358979323846;
      const double l0 = static_cast<double>(l.original_max_position);
      const double low_wl = l0 / l.low_freq_factor;
      const double high_wl = l0 / l.high_freq_factor;
      for (int i = 0; i < n; ++i) {
        const double th = at(theta_, i);
        const double wl = 2.0 * pi / th;
        if (wl > low_wl) {
          at(inv_freq_, i) = th / l.factor;
        } else if (wl < high_wl) {
          at(inv_freq_, i) = th;
        } else {
          const double smooth = (l0 / wl - l.low_freq_factor) / (l.high_freq_factor - l.low_freq_factor);
          at(inv_freq_, i) = (1.0 - smooth) * th / l.factor + smooth * th;
        }
      }
      break;
    }
    case rope_type::longrope: {
      const auto& lr = cfg_.longrope;
      const double l0 = static_cast<double>(lr.original_max_position);
      set_ = select_factor_set(opt.policy, lr.original_max_position, opt.seq_len);
      const std::vector<double>* chosen = set_ == factor_set::long_factors ? &lr.long_factor : &lr.short_factor;
      const std::optional<double>* mscale = set_ == factor_set::long_factors ? &lr.long_mscale : &lr.short_mscale;
      std::optional<double> bucket_attention;
      if (!lr.buckets.empty()) {
        bucket_ = detail::select_bucket(lr.buckets, opt.policy, opt.seq_len);
        const auto& bk = lr.buckets[static_cast<std::size_t>(bucket_)];
        chosen = &bk.factors;
        set_ = bk.max_length > lr.original_max_position ? factor_set::long_factors : factor_set::short_factors;
        bucket_attention = bk.attention_factor;
        mscale = &bucket_attention;
      }
      const auto& lambda = *chosen;
      for (int i = 0; i < n; ++i) {
        // transformers: 1 / (ext_factor * base**(2i/d)).
        at(inv_freq_, i) = 1.0 / (lambda[static_cast<std::size_t>(i)] *
                                  std::pow(cfg_.base, static_cast<double>(2 * i) / dd));
      }
      double s = 1.0;
      if (lr.factor) {
        s = *lr.factor;
      } else if (cfg_.max_position_embeddings > 0) {
        s = static_cast<double>(cfg_.max_position_embeddings) / l0;
      }
      if (*mscale) {
        attention_factor_ = **mscale;
      } else if (lr.attention_factor) {
        attention_factor_ = *lr.attention_factor;
      } else {
        attention_factor_ = s <= 1.0 ? 1.0 : std::sqrt(1.0 + std::log(s) / std::log(l0));
      }
      break;
    }
    case rope_type::proportional: {
      // transformers v5 _compute_proportional_rope_parameters: exponents over the
      // whole head, pairs past rotated_pairs stay at frequency 0.
      const int k = cfg_.proportional.rotated_pairs == 0 ? n : cfg_.proportional.rotated_pairs;
      for (int i = 0; i < n; ++i) {
        if (i >= k) at(theta_, i) = 0.0;
        at(inv_freq_, i) = at(theta_, i) / cfg_.factor;
      }
      break;
    }
  }
  rescale_.resize(static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) {
    // A pair at frequency 0 never rotates: report lambda = 1 rather than 0 / 0.
    at(rescale_, i) = at(inv_freq_, i) == 0.0 ? 1.0 : at(theta_, i) / at(inv_freq_, i);
  }
  if (cfg_.type == rope_type::longrope) {
    // Report the configured lambdas exactly rather than theta / (theta / lambda).
    if (bucket_ >= 0) {
      rescale_ = cfg_.longrope.buckets[static_cast<std::size_t>(bucket_)].factors;
    } else {
      rescale_ = set_ == factor_set::long_factors ? cfg_.longrope.long_factor : cfg_.longrope.short_factor;
    }
  }
  // Issue 9: a config that validates can still produce inf/NaN/0 here; refuse it
  // at construction, naming the keys the value comes from.
  const char* keys = "rope_theta";
  switch (cfg_.type) {
    case rope_type::none: keys = "rope_theta"; break;
    case rope_type::linear: keys = "factor and rope_theta"; break;
    case rope_type::ntk: keys = "factor and rope_theta"; break;
    case rope_type::dynamic: keys = "factor, max_position_embeddings and rope_theta"; break;
    case rope_type::yarn: keys = "yarn.factor, yarn.beta_fast, yarn.beta_slow, yarn.original_max_position and rope_theta"; break;
    case rope_type::llama3: keys = "llama3.factor, llama3.low_freq_factor, llama3.high_freq_factor and rope_theta"; break;
    case rope_type::longrope:
      keys = set_ == factor_set::long_factors ? "longrope.long_factor and rope_theta" : "longrope.short_factor and rope_theta";
      break;
    case rope_type::proportional: keys = "proportional.factor, proportional.rotated_pairs and rope_theta"; break;
  }
  // Messages are built only on failure: this runs for every search candidate.
  auto finite_positive = [&](double v, const char* what, int i, const char* from) {
    if (!(std::isfinite(v) && v > 0.0)) {
      LONGROPE_THROW("longrope.config", std::string(what) + (i >= 0 ? "[" + std::to_string(i) + "]" : std::string()) +
                                            " = " + std::to_string(v) + " is not a finite positive number (from " +
                                            std::string(from) + ")");
    }
  };
  for (int i = 0; i < n; ++i) {
    // proportional: the pairs from rotated_pairs on never rotate (theta and
    // inv_freq exactly 0 by definition; 0 rotated_pairs means every pair rotates).
    const bool still = cfg_.type == rope_type::proportional && cfg_.proportional.rotated_pairs > 0 &&
                       i >= cfg_.proportional.rotated_pairs;
    if (still) {
      if (at(theta_, i) != 0.0 || at(inv_freq_, i) != 0.0) LONGROPE_THROW("longrope.config", "proportional: a still pair rotates");
    } else {
      finite_positive(at(theta_, i), "theta", i, "rope_theta");
      finite_positive(at(inv_freq_, i), "inv_freq", i, keys);
    }
    finite_positive(at(rescale_, i), "rescale factor", i, keys);
  }
  // The attention factor multiplies float tables too: above 1e6 (real ones are ~1-2) it is refused.
  if (!(std::isfinite(attention_factor_) && attention_factor_ > 0.0 && attention_factor_ <= 1e6)) {
    std::string from = "the attention factor";
    if (cfg_.type == rope_type::longrope) {
      from = cfg_.longrope.attention_factor ? "longrope.attention_factor"
                                            : "longrope.factor / max_position_embeddings and longrope.original_max_position "
                                              "(sqrt(1 + ln s / ln L0) needs L0 > 1)";
    } else if (cfg_.type == rope_type::yarn) {
      from = "yarn.attention_factor, yarn.mscale, yarn.mscale_all_dim and yarn.factor";
    }
    finite_positive(attention_factor_, "attention_factor", -1, from.c_str());
    LONGROPE_THROW("longrope.config", "attention_factor = " + std::to_string(attention_factor_) +
                                          " is above 1e6 (cos/sin tables would overflow float; from " + from + ")");
  }
  amplitude_.assign(static_cast<std::size_t>(n), attention_factor_);
  for (std::size_t i = 0; i < cfg_.pair_mscale.size(); ++i) amplitude_[i] = attention_factor_ * cfg_.pair_mscale[i];
  for (int i = 0; i < n; ++i) {
    if (!(std::isfinite(at(amplitude_, i)) && at(amplitude_, i) > 0.0 && at(amplitude_, i) <= 1e6)) {
      LONGROPE_THROW("longrope.config", "amplitude of pair " + std::to_string(i) + " (attention_factor * pair_mscale[" +
                                            std::to_string(i) + "]) = " + std::to_string(at(amplitude_, i)) +
                                            " is not a finite number in (0, 1e6]");
    }
  }
  double max_freq = 0.0;
  for (double v : theta_) max_freq = std::max(max_freq, v);
  for (double v : inv_freq_) max_freq = std::max(max_freq, v);
  // max_freq > 0 (checked above); the cap keeps the conversion defined.
  max_position_ = static_cast<std::int64_t>(std::min(std::floor(max_angle / max_freq), 9.0e18));
}

}  // namespace longrope
