// longrope: header-only LongRoPE positional interpolation. MIT License.
#pragma once

/// \file export.hpp
/// Writing searched LongRoPE factors into a model's config.json in the exact
/// form one engine reads (docs/interop.md has the key tables):
///
///   hf4   transformers 4.4x Phi3Config: rope_scaling holds exactly
///         {type, short_factor, long_factor}; original_max_position_embeddings
///         at the top level; the attention factor is always
///         sqrt(1 + ln(max_pos / L0) / ln L0), nothing else can be expressed.
///   hf5   transformers 5.x: rope_parameters {rope_type, rope_theta, short_factor,
///         long_factor, original_max_position_embeddings [, factor]
///         [, attention_factor] [, partial_rotary_factor]}; rope_scaling and the
///         top-level rope_theta are replaced by it.
///   vllm  vLLM's Phi-3 path (Phi3LongRoPEScaledRotaryEmbedding): the hf4 block,
///         plus short_mscale / long_mscale (scalars multiplying cos and sin of
///         each set) when an attention factor other than the derived one is
///         requested. vLLM picks the set once: long iff max_model_len > L0.
///
/// Every other key of the input keeps its value and position (nlohmann::ordered_json);
/// replaced keys keep the position of the key they replace. Neither n_hat != 0
/// (no engine implements the start-token cutoff) nor per-pair mscale can be
/// expressed in any target: both are refused with longrope::error
/// ("longrope.export"), n_hat unless drop_n_hat is set.
/// Requires nlohmann-json (like json.hpp).

#include <cmath>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "config.hpp"
#include "error.hpp"
#include "json.hpp"

namespace longrope {

enum class export_target { hf4, hf5, vllm };

/// "hf4" | "hf5" | "vllm" -> target; throws "longrope.export" otherwise.
export_target parse_export_target(const std::string& name);

/// What to write into the config.
struct export_options {
  export_target target = export_target::hf4;
  std::vector<double> long_factors;                 ///< rotary_dim/2 values > 0: the searched factors.
  std::vector<double> short_factors;                ///< empty: the input's short factors are kept.
  std::int64_t n_hat = 0;                           ///< the search's start-token cutoff.
  bool drop_n_hat = false;                          ///< write the factors without a non-zero n_hat.
  /// The attention factor to write: hf5 attention_factor (transformers applies
  /// it to both sets), vllm long_mscale (the short set keeps the derived one);
  /// hf4 cannot express it.
  std::optional<double> attention_factor;
  std::vector<double> per_pair_mscale;              ///< must be empty: no target can express it.
};

/// The config `in` (a transformers config.json of a LongRoPE model: Phi-3
/// style rope_scaling, or rope_parameters) rewritten for options.target with
/// the given factors. Throws longrope::error: "longrope.export" for what the
/// target cannot express (n_hat, per-pair mscale, an attention factor for hf4),
/// an input that is not LongRoPE, a wrong factor count; "longrope.json" for a
/// malformed input. O(size of the config).
nlohmann::ordered_json export_config(const nlohmann::ordered_json& in, const export_options& options);

/// The indentation of a JSON text (spaces before its first indented key), 2 when
/// none is found: export keeps the input's layout where it can.
int json_indent_of(const std::string& text);

// ---------------------------------------------------------------------------
// Implementation

namespace detail {

[[noreturn]] inline void export_fail(const std::string& what) { LONGROPE_THROW("longrope.export", what); }

/// obj with key `old_key` replaced by (new_key, value) at the same position
/// (appended when old_key is absent), dropping any other `new_key`.
inline nlohmann::ordered_json replace_key(const nlohmann::ordered_json& obj, const std::string& old_key,
                                          const std::string& new_key, const nlohmann::ordered_json& value) {
  nlohmann::ordered_json out = nlohmann::ordered_json::object();
  bool placed = false;
  for (const auto& item : obj.items()) {
    if (item.key() == old_key) {
      out[new_key] = value;
      placed = true;
    } else if (item.key() != new_key) {
      out[item.key()] = item.value();
    }
  }
  if (!placed) out[new_key] = value;
  return out;
}

inline const char* target_name(export_target t) {
  switch (t) {
    case export_target::hf4: return "hf4";
    case export_target::hf5: return "hf5";
    case export_target::vllm: return "vllm";
  }
  return "?";
}

inline double longrope_default_attention(double s, double l0) {
  return s <= 1.0 ? 1.0 : std::sqrt(1.0 + std::log(s) / std::log(l0));
}

}  // namespace detail

inline export_target parse_export_target(const std::string& name) {
  if (name == "hf4") return export_target::hf4;
  if (name == "hf5") return export_target::hf5;
  if (name == "vllm") return export_target::vllm;
  detail::export_fail("unknown target '" + name + "' (expected hf4, hf5 or vllm)");
}

inline int json_indent_of(const std::string& text) {
  const auto nl = text.find('\n');
  if (nl == std::string::npos) return 2;
  std::size_t k = nl + 1;
  int n = 0;
  while (k < text.size() && text[k] == ' ') {
    ++n;
    ++k;
  }
  return n > 0 && n <= 8 ? n : 2;
}

inline nlohmann::ordered_json export_config(const nlohmann::ordered_json& in, const export_options& o) {
  using detail::export_fail;
  using oj = nlohmann::ordered_json;
  const char* tname = detail::target_name(o.target);
  if (!in.is_object()) export_fail("the input config is not a JSON object");
  // Read the input with the library's reader: validates it and gives pairs, L0, s.
  const rope_config cfg = rope_config_from_json(nlohmann::json::parse(in.dump()));
  if (cfg.type != rope_type::longrope) {
    export_fail(std::string("the input config's rope type is '") + to_string(cfg.type) +
                "': export writes factors into a LongRoPE config (rope_scaling/rope_parameters of type longrope)");
  }
  if (o.n_hat != 0 && !o.drop_n_hat) {
    export_fail(std::string("n_hat = ") + std::to_string(o.n_hat) + " cannot be expressed for target " + tname +
                " (no engine implements the start-token cutoff); pass --drop-n-hat to write the factors without it");
  }
  if (!o.per_pair_mscale.empty()) {
    export_fail(std::string("a per-pair mscale cannot be expressed for target ") + tname +
                " (engines take one attention factor per factor set)");
  }
  const int pairs = cfg.pairs();
  auto check = [&](const std::vector<double>& v, const char* what) {
    if (static_cast<int>(v.size()) != pairs) {
      export_fail(std::string(what) + ": expected " + std::to_string(pairs) + " values (rotary_dim / 2 of the config), got " +
                  std::to_string(v.size()));
    }
    for (std::size_t k = 0; k < v.size(); ++k) {
      if (!std::isfinite(v[k]) || !(v[k] > 0.0)) {
        export_fail(std::string(what) + "[" + std::to_string(k) + "]: must be finite and > 0");
      }
    }
  };
  check(o.long_factors, "long factors");
  if (!o.short_factors.empty()) check(o.short_factors, "short factors");
  if (o.attention_factor && (!std::isfinite(*o.attention_factor) || !(*o.attention_factor > 0.0))) {
    export_fail("attention factor: must be finite and > 0");
  }
  const std::vector<double>& shorts = o.short_factors.empty() ? cfg.longrope.short_factor : o.short_factors;

  const bool from_v5 = in.contains("rope_parameters") && !in["rope_parameters"].is_null();
  const std::string bname = from_v5 ? "rope_parameters" : "rope_scaling";
  const oj& block = in[bname];
  const std::int64_t l0 = cfg.longrope.original_max_position;
  const bool has_attention = block.contains("attention_factor") && !block["attention_factor"].is_null();

  if (o.target == export_target::hf4 || o.target == export_target::vllm) {
    if (o.target == export_target::hf4 && (o.attention_factor || has_attention)) {
      export_fail("an attention factor cannot be expressed for target hf4 (Phi3Config's rope_scaling holds exactly "
                  "type, short_factor and long_factor; the factor is derived from max_position_embeddings / "
                  "original_max_position_embeddings); use --target hf5 or vllm");
    }
    if (block.contains("factor") && cfg.longrope.factor && cfg.max_position_embeddings > 0 &&
        *cfg.longrope.factor != static_cast<double>(cfg.max_position_embeddings) / static_cast<double>(l0)) {
      export_fail("the input's factor differs from max_position_embeddings / original_max_position_embeddings, and "
                  "transformers 4.x and vLLM derive the scale from the latter: target " + std::string(tname) +
                  " cannot express it");
    }
    oj nb = oj::object();
    std::string type_value = "longrope";
    if (block.contains("type") && block["type"].is_string() && block["type"].get<std::string>() == "su") type_value = "su";
    for (const auto& item : block.items()) {
      const std::string& k = item.key();
      if (k == "type" || (k == "rope_type" && !block.contains("type"))) nb["type"] = type_value;
      if (k == "short_factor") nb["short_factor"] = shorts;
      if (k == "long_factor") nb["long_factor"] = o.long_factors;
    }
    if (!nb.contains("type")) nb["type"] = type_value;
    if (!nb.contains("short_factor")) nb["short_factor"] = shorts;
    if (!nb.contains("long_factor")) nb["long_factor"] = o.long_factors;
    if (o.target == export_target::vllm) {
      const double s = static_cast<double>(cfg.max_position_embeddings) / static_cast<double>(l0);
      const double derived = detail::longrope_default_attention(s, static_cast<double>(l0));
      std::optional<double> a = o.attention_factor;
      if (!a && has_attention) a = cfg.longrope.attention_factor;
      if (a && *a != derived) {
        // vLLM multiplies cos/sin of each set by its mscale; the short set keeps
        // the derived value transformers would use.
        nb["short_mscale"] = has_attention ? *cfg.longrope.attention_factor : derived;
        nb["long_mscale"] = *a;
      }
    }
    oj out = detail::replace_key(in, bname, "rope_scaling", nb);
    // L0 and the geometry at the top level, where 4.x and vLLM read them.
    auto hoist = [&](const char* key) {
      if (block.contains(key) && !out.contains(key)) out[key] = block[key];
    };
    hoist("original_max_position_embeddings");
    hoist("rope_theta");
    hoist("partial_rotary_factor");
    if (!out.contains("original_max_position_embeddings")) out["original_max_position_embeddings"] = l0;
    return out;
  }

  // hf5: rope_parameters.
  oj nb = oj::object();
  auto top = [&](const char* key) -> const oj* {
    if (block.contains(key) && !block[key].is_null()) return &block[key];
    if (in.contains(key) && !in[key].is_null()) return &in[key];
    return nullptr;
  };
  for (const auto& item : block.items()) {
    const std::string& k = item.key();
    if (k == "type" || k == "rope_type") {
      nb["rope_type"] = "longrope";
    } else if (k == "short_factor") {
      nb["short_factor"] = shorts;
    } else if (k == "long_factor") {
      nb["long_factor"] = o.long_factors;
    } else if (k == "factor") {
      // 4.x (rope_scaling with an L0) ignores factor; v5 would let it win: drop
      // it so v5 derives the same max_position_embeddings / L0.
      if (from_v5) nb["factor"] = item.value();
    } else if (k == "n_hat") {
      // not written: refused above unless dropped
    } else {
      nb[k] = item.value();
    }
  }
  nb["rope_type"] = "longrope";
  if (const oj* t = top("rope_theta")) {
    nb["rope_theta"] = *t;
  } else {
    nb["rope_theta"] = cfg.base;
  }
  if (!nb.contains("short_factor")) nb["short_factor"] = shorts;
  if (!nb.contains("long_factor")) nb["long_factor"] = o.long_factors;
  nb["original_max_position_embeddings"] = l0;
  if (const oj* p = top("partial_rotary_factor")) nb["partial_rotary_factor"] = *p;
  if (o.attention_factor) nb["attention_factor"] = *o.attention_factor;
  oj out = detail::replace_key(in, bname, "rope_parameters", nb);
  if (!from_v5) out.erase("rope_scaling");
  out.erase("rope_theta");  // moved into rope_parameters, as transformers v5 saves it
  return out;
}

}  // namespace longrope
