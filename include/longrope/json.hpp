// longrope: header-only LongRoPE positional interpolation. MIT License.
#pragma once

/// \file json.hpp
/// Config I/O with nlohmann-json: read the rope settings of a transformers
/// config.json into a rope_config, and write a rope_scaling block (for example
/// searched LongRoPE factors) back. Kept out of the umbrella header
/// <longrope/longrope.hpp> so the core needs no JSON library; include this
/// header explicitly and link nlohmann_json::nlohmann_json.
///
/// What is read (transformers' semantics, PretrainedConfig + modeling_rope_utils):
///
///   head_dim                 "head_dim", else hidden_size / num_attention_heads (floor division)
///   rotary_dim               int(head_dim * partial_rotary_factor) (default factor 1.0)
///   base                     "rope_theta" (default 10000)
///   method block             "rope_scaling" (transformers <= 4.x) or "rope_parameters" (the newer
///                            form; it may also carry rope_theta and partial_rotary_factor). null or
///                            absent: plain RoPE.
///   method                   block."rope_type", else block."type": default | linear | ntk (longrope
///                            extension: static NTK-aware) | dynamic | yarn | llama3 | longrope | su
///                            ("su" is the legacy name of longrope; for model_type "phi3" a "yarn"
///                            type also means longrope, as transformers' Phi3Config maps it).
///   linear, ntk, dynamic     block.factor; dynamic also max_position_embeddings (top level).
///   yarn                     block.factor, beta_fast, beta_slow (null or 0 = default 32 / 1),
///                            mscale, mscale_all_dim, attention_factor, truncate.
///                            rope_scaling (transformers 4.x): when the block has
///                            original_max_position_embeddings L0, the scale is
///                            max_position_embeddings / L0, overriding factor (DeepSeek-V3's rule);
///                            otherwise L0 = max_position_embeddings.
///                            rope_parameters (transformers v5): L0 = the block's or the top-level
///                            original length, else max_position_embeddings; the scale is factor
///                            when given, else max_position_embeddings / L0.
///   llama3                   block.factor, low_freq_factor, high_freq_factor,
///                            original_max_position_embeddings (block, else top level).
///   longrope                 block.short_factor, long_factor [rotary_dim / 2 numbers each], optional
///                            factor and attention_factor. L0 = original_max_position_embeddings at
///                            the top level (Phi-3) or in the block (the block wins in the
///                            rope_parameters form, the top level in rope_scaling); when present the
///                            scale used for the attention factor is max_position_embeddings / L0
///                            (rope_scaling: always, as transformers 4.x; rope_parameters: only when
///                            factor is absent, as v5); when absent L0 = max_position_embeddings and
///                            the scale is block.factor (default 1).
///   n_hat                    block."n_hat" (longrope extension, default 0): the start-token cutoff.
///   layout                   half_split (transformers' rotate_half, used by every model type it
///                            implements with this config form, phi3 and llama included), except
///                            model_type "gptj" (interleaved); json_read_options::layout overrides.
///
/// Errors: every malformed input throws longrope::error with id "longrope.json"
/// and a message naming the key: a missing required key, a wrong JSON type
/// ("rope_scaling.factor: expected a number, got string"), a non-finite or
/// out-of-range value, a wrong factor count, an unknown rope type. Files that
/// cannot be opened give "longrope.io". No input crashes or is silently
/// accepted. The final rope_config is also checked with rope_config::validate().

#include <cmath>
#include <cstdint>
#include <fstream>
#include <limits>
#include <optional>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "config.hpp"
#include "error.hpp"
#include "io.hpp"
#include "gguf.hpp"

namespace longrope {

/// Options for rope_config_from_json.
struct json_read_options {
  /// Overrides the layout derived from model_type.
  std::optional<pair_layout> layout;
};

/// Builds a rope_config from a parsed transformers config.json object (see the
/// file comment for the keys). Throws longrope::error ("longrope.json") naming
/// the key on malformed input. O(size of the rope block).
inline rope_config rope_config_from_json(const nlohmann::json& config, const json_read_options& opt = {});

/// The rope_config of every layer type of a config whose rope_parameters is
/// keyed by layer type (transformers v5, Gemma style: {"full_attention": {...},
/// "sliding_attention": {...}}), in the object's key order (alphabetical for
/// nlohmann::json); each block is read as
/// rope_config_from_json reads a single one (top-level keys shared). A config
/// with one block gives one entry named "". Throws "longrope.json" naming the
/// layer type. O(size of the config).
inline std::vector<std::pair<std::string, rope_config>> rope_configs_by_layer_type(const nlohmann::json& config,
                                                                                 const json_read_options& opt = {});

/// Reads and parses the file at `path` and calls rope_config_from_json. A
/// GGUF file (first bytes "GGUF") is read with rope_config_from_gguf instead
/// (gguf.hpp; "longrope.gguf" errors).
/// Throws longrope::error: "longrope.io" if the file cannot be opened,
/// "longrope.json" if it is not valid JSON or malformed (the message gives the
/// parser's byte offset or the offending key).
inline rope_config load_rope_config(const std::string& path, const json_read_options& opt = {});

/// The rope_scaling block transformers reads for `cfg`'s method, e.g. for
/// LongRoPE (searched factors):
///     {"type": "longrope", "rope_type": "longrope", "short_factor": [...],
///      "long_factor": [...], "original_max_position_embeddings": L0, "n_hat": K
///      [, "factor": s] [, "attention_factor": a]}
/// "type" and "rope_type" are both written (older readers use the first, newer
/// the second). Returns null for rope_type::none. n_hat is written for every
/// method when non-zero (a longrope extension; transformers ignores unknown
/// keys). Doubles are stored exactly (nlohmann-json dumps them round-trip).
/// Throws "longrope.config" if cfg does not validate. O(rotary_dim).
inline nlohmann::json to_rope_scaling_json(const rope_config& cfg);

/// A minimal config.json holding every rope field of cfg: head_dim, rope_theta,
/// partial_rotary_factor (when rotary_dim < head_dim), max_position_embeddings
/// (when set), original_max_position_embeddings (LongRoPE, top level as Phi-3
/// keeps it) and rope_scaling. rope_config_from_json(to_config_json(c)) gives
/// back c for every valid c whose rotary_dim / head_dim is exactly
/// representable and whose yarn L0 and scale agree with the reader's rules.
/// Throws "longrope.config" if cfg does not validate.
inline nlohmann::json to_config_json(const rope_config& cfg);

// ---------------------------------------------------------------------------
// Implementation

namespace detail {

[[noreturn]] inline void json_fail(const std::string& key, const std::string& what) {
  LONGROPE_THROW("longrope.json", key + ": " + what);
}

inline const char* json_type_name(const nlohmann::json& v) noexcept {
  if (v.is_null()) return "null";
  if (v.is_boolean()) return "boolean";
  if (v.is_number()) return "number";
  if (v.is_string()) return "string";
  if (v.is_array()) return "array";
  if (v.is_object()) return "object";
  return "unknown";
}

/// The value at obj[key], or nullptr when absent or null (transformers treats
/// both as "not given").
inline const nlohmann::json* json_find(const nlohmann::json& obj, const char* key) {
  if (!obj.is_object()) return nullptr;
  const auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return nullptr;
  return &*it;
}

inline double json_number(const nlohmann::json& v, const std::string& key) {
  if (!v.is_number()) json_fail(key, std::string("expected a number, got ") + json_type_name(v));
  const double d = v.get<double>();
  if (!std::isfinite(d)) json_fail(key, "must be finite, got " + std::to_string(d));
  return d;
}

inline double json_positive(const nlohmann::json& v, const std::string& key) {
  const double d = json_number(v, key);
  if (!(d > 0.0)) json_fail(key, "must be > 0, got " + std::to_string(d));
  return d;
}

/// A non-negative integer; an integral float (4096.0) is accepted.
inline std::int64_t json_count(const nlohmann::json& v, const std::string& key) {
  if (v.is_number_unsigned()) {
    const auto u = v.get<std::uint64_t>();
    if (u > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max() / 4)) {
      json_fail(key, "value " + std::to_string(u) + " is out of range");
    }
    return static_cast<std::int64_t>(u);
  }
  if (v.is_number_integer()) {
    const auto i = v.get<std::int64_t>();
    if (i < 0) json_fail(key, "must be >= 0, got " + std::to_string(i));
    return i;
  }
  if (v.is_number_float()) {
    const double d = v.get<double>();
    if (!std::isfinite(d) || d != std::floor(d)) json_fail(key, "expected an integer, got " + std::to_string(d));
    if (d < 0.0) json_fail(key, "must be >= 0, got " + std::to_string(d));
    if (d > 1e15) json_fail(key, "value " + std::to_string(d) + " is out of range");
    return static_cast<std::int64_t>(d);
  }
  json_fail(key, std::string("expected an integer, got ") + json_type_name(v));
}

inline std::int64_t json_positive_count(const nlohmann::json& v, const std::string& key) {
  const std::int64_t i = json_count(v, key);
  if (i <= 0) json_fail(key, "must be > 0, got " + std::to_string(i));
  return i;
}

inline int json_head_dim(std::int64_t v, const std::string& key) {
  if (v > 65536) json_fail(key, "gives head_dim " + std::to_string(v) + ", out of range (> 65536)");
  return static_cast<int>(v);
}

inline std::vector<double> json_factor_list(const nlohmann::json& v, const std::string& key, int pairs) {
  if (!v.is_array()) json_fail(key, std::string("expected an array of numbers, got ") + json_type_name(v));
  if (static_cast<std::int64_t>(v.size()) != pairs) {
    json_fail(key, "expected " + std::to_string(pairs) + " numbers (rotary_dim / 2), got " + std::to_string(v.size()));
  }
  std::vector<double> out;
  out.reserve(v.size());
  for (std::size_t i = 0; i < v.size(); ++i) {
    out.push_back(json_positive(v[i], key + "[" + std::to_string(i) + "]"));
  }
  return out;
}

inline std::string json_string(const nlohmann::json& v, const std::string& key) {
  if (!v.is_string()) json_fail(key, std::string("expected a string, got ") + json_type_name(v));
  return v.get<std::string>();
}

}  // namespace detail

}  // namespace longrope

#define LONGROPE_JSON_INTERNAL 1
#include "detail/json_ext.hpp"
#undef LONGROPE_JSON_INTERNAL

namespace longrope {

inline rope_config rope_config_from_json(const nlohmann::json& j, const json_read_options& opt) {
  using namespace detail;
  if (!j.is_object()) json_fail("config", std::string("expected a JSON object, got ") + json_type_name(j));
  rope_config cfg;

  std::string model_type;
  if (const auto* v = json_find(j, "model_type")) model_type = json_string(*v, "model_type");

  // The method block: rope_parameters (newer) or rope_scaling.
  const nlohmann::json* block = nullptr;
  std::string bname = "rope_scaling";
  if (const auto* v = json_find(j, "rope_parameters")) {
    block = v;
    bname = "rope_parameters";
  } else if (const auto* w = json_find(j, "rope_scaling")) {
    block = w;
  }
  if (block && !block->is_object()) {
    json_fail(bname, std::string("expected an object, got ") + json_type_name(*block));
  }
  if (block && bname == "rope_parameters" && !json_find(*block, "rope_type") && !json_find(*block, "type")) {
    // Per-layer-type parameters ({"full_attention": {...}, ...}) are not one config.
    for (const auto& item : block->items()) {
      if (item.value().is_object()) {
        json_fail(bname, "per-layer-type parameters ('" + item.key() +
                              "'): read them with rope_configs_by_layer_type, or pass the block of one layer type");
      }
    }
  }
  const bool v5 = bname == "rope_parameters";  // transformers v5 semantics (see the file comment)
  auto key = [&](const char* k) { return bname + "." + k; };

  // Geometry.
  if (const auto* v = json_find(j, "head_dim")) {
    cfg.head_dim = json_head_dim(json_positive_count(*v, "head_dim"), "head_dim");
  } else {
    const auto* h = json_find(j, "hidden_size");
    const auto* n = json_find(j, "num_attention_heads");
    if (!h) json_fail("head_dim", "missing (and no hidden_size / num_attention_heads to derive it)");
    if (!n) json_fail("num_attention_heads", "missing (needed to derive head_dim from hidden_size)");
    const std::int64_t hs = json_positive_count(*h, "hidden_size");
    const std::int64_t nh = json_positive_count(*n, "num_attention_heads");
    if (hs / nh <= 0) json_fail("hidden_size", "hidden_size / num_attention_heads is 0");
    cfg.head_dim = json_head_dim(hs / nh, "hidden_size");
  }
  double partial = 1.0;
  const nlohmann::json* pv = block ? json_find(*block, "partial_rotary_factor") : nullptr;
  std::string pkey = key("partial_rotary_factor");
  if (!pv) {
    pv = json_find(j, "partial_rotary_factor");
    pkey = "partial_rotary_factor";
  }
  if (pv) {
    partial = json_positive(*pv, pkey);
    if (partial > 1.0) json_fail(pkey, "must be in (0, 1], got " + std::to_string(partial));
  }
  // transformers: int(head_dim * partial_rotary_factor).
  cfg.rotary_dim = static_cast<int>(static_cast<double>(cfg.head_dim) * partial);
  if (cfg.rotary_dim < 2 || cfg.rotary_dim % 2 != 0) {
    json_fail(pv ? pkey : std::string("head_dim"),
              "gives rotary_dim " + std::to_string(cfg.rotary_dim) + " (head_dim " + std::to_string(cfg.head_dim) +
                  "), which must be even and >= 2");
  }
  if (cfg.rotary_dim == cfg.head_dim) cfg.rotary_dim = 0;

  const nlohmann::json* tv = block ? json_find(*block, "rope_theta") : nullptr;
  std::string tkey = key("rope_theta");
  if (!tv) {
    tv = json_find(j, "rope_theta");
    tkey = "rope_theta";
  }
  if (tv) {
    cfg.base = json_positive(*tv, tkey);
    if (cfg.base == 1.0) json_fail(tkey, "must not be 1");
  }

  std::optional<std::int64_t> max_pos;
  if (const auto* v = json_find(j, "max_position_embeddings")) {
    max_pos = json_positive_count(*v, "max_position_embeddings");
    cfg.max_position_embeddings = *max_pos;
  }
  auto require_max_pos = [&](const char* why) -> std::int64_t {
    if (!max_pos) json_fail("max_position_embeddings", std::string("missing (") + why + ")");
    return *max_pos;
  };

  if (opt.layout) {
    cfg.layout = *opt.layout;
  } else {
    cfg.layout = model_type == "gptj" ? pair_layout::interleaved : pair_layout::half_split;
  }

  if (!block) {
    cfg.type = rope_type::none;
    cfg.validate();
    return cfg;
  }

  // Method name: rope_type wins over type, as in transformers.
  std::string type_key = key("rope_type");
  const nlohmann::json* typ = json_find(*block, "rope_type");
  if (!typ) {
    typ = json_find(*block, "type");
    type_key = key("type");
  }
  if (!typ) json_fail(key("rope_type"), "missing (neither 'rope_type' nor 'type' is given)");
  std::string name = json_string(*typ, type_key);
  if (name == "su") name = "longrope";
  if (name == "yarn" && model_type == "phi3") name = "longrope";  // Phi3Config's backward compatibility

  auto get = [&](const char* k) { return json_find(*block, k); };
  auto need = [&](const char* k) -> const nlohmann::json& {
    const auto* v = get(k);
    if (!v) json_fail(key(k), "missing (required for rope type '" + name + "')");
    return *v;
  };
  const int d = cfg.effective_rotary_dim();

  if (name == "default" || name == "none") {
    cfg.type = rope_type::none;
  } else if (name == "linear" || name == "ntk") {
    cfg.type = name == "linear" ? rope_type::linear : rope_type::ntk;
    cfg.factor = json_positive(need("factor"), key("factor"));
  } else if (name == "dynamic") {
    cfg.type = rope_type::dynamic;
    cfg.factor = json_positive(need("factor"), key("factor"));
    require_max_pos("dynamic NTK scales from the trained length");
  } else if (name == "yarn") {
    cfg.type = rope_type::yarn;
    auto& y = cfg.yarn;
    std::optional<double> factor;
    if (const auto* v = get("factor")) factor = json_positive(*v, key("factor"));
    const auto* ov = get("original_max_position_embeddings");
    if (!v5 && !factor) need("factor");
    if (ov) {
      y.original_max_position = json_positive_count(*ov, key("original_max_position_embeddings"));
    } else if (const auto* w = v5 ? json_find(j, "original_max_position_embeddings") : nullptr) {
      y.original_max_position = json_positive_count(*w, "original_max_position_embeddings");
    } else {
      y.original_max_position = require_max_pos("yarn uses it as the original length");
    }
    if (!v5 && ov) {
      // transformers 4.x: with an original length in the block the scale is
      // max_position_embeddings / L0, overriding factor (DeepSeek-V3's rule).
      y.factor = static_cast<double>(require_max_pos("yarn derives its scale from it")) /
                 static_cast<double>(y.original_max_position);
    } else if (factor) {
      y.factor = *factor;  // rope_parameters: an explicit factor wins
    } else {
      y.factor = static_cast<double>(require_max_pos("yarn derives its scale from it")) /
                 static_cast<double>(y.original_max_position);
    }
    // transformers: `get("beta_fast") or 32`, so 0 also means the default.
    if (const auto* v = get("beta_fast")) {
      const double b = json_number(*v, key("beta_fast"));
      if (b < 0.0) json_fail(key("beta_fast"), "must be > 0, got " + std::to_string(b));
      if (b != 0.0) y.beta_fast = b;
    }
    if (const auto* v = get("beta_slow")) {
      const double b = json_number(*v, key("beta_slow"));
      if (b < 0.0) json_fail(key("beta_slow"), "must be > 0, got " + std::to_string(b));
      if (b != 0.0) y.beta_slow = b;
    }
    if (const auto* v = get("mscale")) y.mscale = json_number(*v, key("mscale"));
    if (const auto* v = get("mscale_all_dim")) y.mscale_all_dim = json_number(*v, key("mscale_all_dim"));
    // transformers tests `if mscale and mscale_all_dim`: a zero means "not given".
    if (y.mscale && *y.mscale == 0.0) y.mscale.reset();
    if (y.mscale_all_dim && *y.mscale_all_dim == 0.0) y.mscale_all_dim.reset();
    if (y.mscale && *y.mscale < 0.0) json_fail(key("mscale"), "must be >= 0, got " + std::to_string(*y.mscale));
    if (y.mscale_all_dim && *y.mscale_all_dim < 0.0) {
      json_fail(key("mscale_all_dim"), "must be >= 0, got " + std::to_string(*y.mscale_all_dim));
    }
    if (const auto* v = get("attention_factor")) y.attention_factor = json_positive(*v, key("attention_factor"));
    if (const auto* v = get("truncate")) {
      if (!v->is_boolean()) json_fail(key("truncate"), std::string("expected a boolean, got ") + json_type_name(*v));
      y.truncate = v->get<bool>();
    }
  } else if (name == "llama3") {
    cfg.type = rope_type::llama3;
    auto& l = cfg.llama3;
    l.factor = json_positive(need("factor"), key("factor"));
    l.low_freq_factor = json_positive(need("low_freq_factor"), key("low_freq_factor"));
    l.high_freq_factor = json_positive(need("high_freq_factor"), key("high_freq_factor"));
    if (!(l.high_freq_factor > l.low_freq_factor)) {
      json_fail(key("high_freq_factor"), "must be > low_freq_factor (" + std::to_string(l.low_freq_factor) + ")");
    }
    if (const auto* v = get("original_max_position_embeddings")) {
      l.original_max_position = json_positive_count(*v, key("original_max_position_embeddings"));
    } else if (const auto* w = json_find(j, "original_max_position_embeddings")) {
      l.original_max_position = json_positive_count(*w, "original_max_position_embeddings");
    } else {
      json_fail(key("original_max_position_embeddings"), "missing (required for rope type 'llama3')");
    }
  } else if (name == "longrope") {
    cfg.type = rope_type::longrope;
    auto& lr = cfg.longrope;
    detail::json_read_longrope_ext(cfg, *block, bname);
    if (!lr.buckets.empty() && !get("short_factor")) {
      lr.short_factor = lr.buckets.front().factors;  // factor_sets alone: short = first set, long = last
    } else {
      lr.short_factor = json_factor_list(need("short_factor"), key("short_factor"), d / 2);
    }
    if (!lr.buckets.empty() && !get("long_factor")) {
      lr.long_factor = lr.buckets.back().factors;
    } else {
      lr.long_factor = json_factor_list(need("long_factor"), key("long_factor"), d / 2);
    }
    std::optional<double> factor;
    if (const auto* v = get("factor")) factor = json_positive(*v, key("factor"));
    if (const auto* v = get("attention_factor")) lr.attention_factor = json_positive(*v, key("attention_factor"));
    // L0: top level (Phi-3) or in the block (the rope_parameters form, others).
    const nlohmann::json* ov = json_find(j, "original_max_position_embeddings");
    std::string okey = "original_max_position_embeddings";
    if (const auto* bv = get("original_max_position_embeddings"); bv && (v5 || !ov)) {
      ov = bv;
      okey = key("original_max_position_embeddings");
    }
    if (ov) {
      lr.original_max_position = json_positive_count(*ov, okey);
      if (v5 && factor) {
        lr.factor = factor;  // rope_parameters: an explicit factor wins
      } else {
        // transformers: s = max_position_embeddings / L0 (4.x ignores rope_scaling.factor then).
        require_max_pos("longrope derives its scale from max_position_embeddings / original_max_position_embeddings");
        lr.factor.reset();
      }
    } else {
      lr.original_max_position = require_max_pos("longrope uses it as the original length when "
                                                 "original_max_position_embeddings is absent");
      lr.factor = factor.value_or(1.0);
    }
  } else if (name == "proportional") {
    detail::json_read_proportional(cfg, *block, bname, partial, pv ? pkey : std::string("head_dim"));
  } else {
    json_fail(type_key, "unknown rope type '" + name +
                            "' (expected default, linear, ntk, dynamic, yarn, llama3, longrope, su or proportional)");
  }

  if (const auto* v = get("n_hat")) cfg.n_hat = json_count(*v, key("n_hat"));

  try {
    cfg.validate();
  } catch (const error& e) {
    LONGROPE_THROW("longrope.json", std::string("config does not validate: ") + e.what());
  }
  return cfg;
}

inline rope_config load_rope_config(const std::string& path, const json_read_options& opt) {
  if (is_gguf_file(path)) {
    rope_config c = rope_config_from_gguf(read_gguf(path));
    if (opt.layout) c.layout = *opt.layout;
    return c;
  }
  const std::string text = read_file(path);  // "X is a directory" / "cannot read X: <errno text>"
  nlohmann::json j;
#if LONGROPE_HAS_EXCEPTIONS
  try {
    j = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    LONGROPE_THROW("longrope.json", path + ": not valid JSON (" + e.what() + ")");
  }
#else
  j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) LONGROPE_THROW("longrope.json", path + ": not valid JSON");
#endif
  return rope_config_from_json(j, opt);
}

inline nlohmann::json to_rope_scaling_json(const rope_config& cfg) {
  cfg.validate();
  nlohmann::json b = nlohmann::json::object();
  auto set_type = [&](const char* t) {
    b["type"] = t;
    b["rope_type"] = t;
  };
  switch (cfg.type) {
    case rope_type::none:
      if (cfg.n_hat == 0) return nullptr;
      set_type("default");
      break;
    case rope_type::linear:
    case rope_type::ntk:
    case rope_type::dynamic:
      set_type(to_string(cfg.type));
      b["factor"] = cfg.factor;
      break;
    case rope_type::yarn: {
      const auto& y = cfg.yarn;
      set_type("yarn");
      b["factor"] = y.factor;
      b["beta_fast"] = y.beta_fast;
      b["beta_slow"] = y.beta_slow;
      if (y.mscale) b["mscale"] = *y.mscale;
      if (y.mscale_all_dim) b["mscale_all_dim"] = *y.mscale_all_dim;
      if (y.attention_factor) b["attention_factor"] = *y.attention_factor;
      if (!y.truncate) b["truncate"] = false;
      // transformers 4.x then takes the scale as max_position_embeddings / L0:
      // a config.json must carry max_position_embeddings = factor * L0 (to_config_json
      // instead writes L0 as max_position_embeddings and no original length).
      b["original_max_position_embeddings"] = y.original_max_position;
      break;
    }
    case rope_type::llama3: {
      const auto& l = cfg.llama3;
      set_type("llama3");
      b["factor"] = l.factor;
      b["low_freq_factor"] = l.low_freq_factor;
      b["high_freq_factor"] = l.high_freq_factor;
      b["original_max_position_embeddings"] = l.original_max_position;
      break;
    }
    case rope_type::longrope: {
      const auto& lr = cfg.longrope;
      set_type("longrope");
      b["short_factor"] = lr.short_factor;
      b["long_factor"] = lr.long_factor;
      b["original_max_position_embeddings"] = lr.original_max_position;
      if (lr.factor) b["factor"] = *lr.factor;
      if (lr.attention_factor) b["attention_factor"] = *lr.attention_factor;
      detail::json_write_longrope_ext(cfg, b);
      break;
    }
    case rope_type::proportional:
      set_type("proportional");
      b["factor"] = cfg.factor;
      if (cfg.proportional.rotated_pairs != 0) {
        b["partial_rotary_factor"] = 2.0 * cfg.proportional.rotated_pairs / cfg.head_dim;
      }
      break;
  }
  if (cfg.n_hat != 0 || cfg.type == rope_type::longrope) b["n_hat"] = cfg.n_hat;
  return b;
}

inline nlohmann::json to_config_json(const rope_config& cfg) {
  nlohmann::json j = nlohmann::json::object();
  nlohmann::json scaling = to_rope_scaling_json(cfg);  // validates
  j["head_dim"] = cfg.head_dim;
  j["rope_theta"] = cfg.base;
  if (cfg.effective_rotary_dim() != cfg.head_dim) {
    j["partial_rotary_factor"] = static_cast<double>(cfg.effective_rotary_dim()) / cfg.head_dim;
  }
  if (cfg.layout == pair_layout::interleaved) j["model_type"] = "gptj";
  std::int64_t max_pos = cfg.max_position_embeddings;
  if (cfg.type == rope_type::yarn) {
    scaling.erase("original_max_position_embeddings");
    max_pos = cfg.yarn.original_max_position;
  }
  if (cfg.type == rope_type::longrope) {
    const auto& lr = cfg.longrope;
    if (lr.factor) {
      // Scale given explicitly: keep L0 as max_position_embeddings so the reader
      // uses rope_scaling.factor (transformers' rule without an original length).
      scaling.erase("original_max_position_embeddings");
      max_pos = lr.original_max_position;
    } else {
      scaling.erase("original_max_position_embeddings");
      j["original_max_position_embeddings"] = lr.original_max_position;
      if (max_pos == 0) max_pos = lr.original_max_position;
    }
  }
  if (max_pos > 0) j["max_position_embeddings"] = max_pos;
  j["rope_scaling"] = scaling;
  return j;
}

}  // namespace longrope
