// longrope: header-only LongRoPE positional interpolation. MIT License.
// The rope keys json.hpp reads beyond transformers 4.x: vLLM's short_mscale /
// long_mscale, length-bucketed factor sets, transformers v5 "proportional" and
// per-layer-type rope_parameters. Include <longrope/json.hpp>, not this file.
#pragma once
#ifndef LONGROPE_JSON_INTERNAL
#error "detail/json_ext.hpp is internal: include <longrope/json.hpp>"
#endif

#include <algorithm>
#include <cmath>
#include <string>
#include <utility>
#include <vector>

namespace longrope {
namespace detail {

/// short_mscale, long_mscale (vLLM) and factor_sets (a longrope extension:
/// [{"max_length": L, "factors": [...], "attention_factor"?: a}, ...]).
inline void json_read_longrope_ext(rope_config& cfg, const nlohmann::json& block, const std::string& bname) {
  auto& lr = cfg.longrope;
  if (const auto* v = json_find(block, "short_mscale")) lr.short_mscale = json_positive(*v, bname + ".short_mscale");
  if (const auto* v = json_find(block, "long_mscale")) lr.long_mscale = json_positive(*v, bname + ".long_mscale");
  const auto* fs = json_find(block, "factor_sets");
  if (!fs) return;
  const std::string key = bname + ".factor_sets";
  if (!fs->is_array() || fs->empty()) json_fail(key, std::string("expected a non-empty array of objects, got ") + json_type_name(*fs));
  for (std::size_t k = 0; k < fs->size(); ++k) {
    const auto& e = (*fs)[k];
    const std::string ek = key + "[" + std::to_string(k) + "]";
    if (!e.is_object()) json_fail(ek, std::string("expected an object, got ") + json_type_name(e));
    longrope_bucket b;
    const auto* ml = json_find(e, "max_length");
    if (!ml) json_fail(ek + ".max_length", "missing");
    b.max_length = json_positive_count(*ml, ek + ".max_length");
    if (k > 0 && b.max_length <= lr.buckets.back().max_length) {
      json_fail(ek + ".max_length", "must be strictly increasing, got " + std::to_string(b.max_length) + " after " +
                                        std::to_string(lr.buckets.back().max_length));
    }
    const auto* f = json_find(e, "factors");
    if (!f) json_fail(ek + ".factors", "missing");
    b.factors = json_factor_list(*f, ek + ".factors", cfg.pairs());
    if (const auto* a = json_find(e, "attention_factor")) b.attention_factor = json_positive(*a, ek + ".attention_factor");
    lr.buckets.push_back(std::move(b));
  }
}

inline void json_write_longrope_ext(const rope_config& cfg, nlohmann::json& b) {
  const auto& lr = cfg.longrope;
  if (lr.short_mscale) b["short_mscale"] = *lr.short_mscale;
  if (lr.long_mscale) b["long_mscale"] = *lr.long_mscale;
  if (lr.buckets.empty()) return;
  nlohmann::json sets = nlohmann::json::array();
  for (const auto& bk : lr.buckets) {
    nlohmann::json e = {{"max_length", bk.max_length}, {"factors", bk.factors}};
    if (bk.attention_factor) e["attention_factor"] = *bk.attention_factor;
    sets.push_back(std::move(e));
  }
  b["factor_sets"] = std::move(sets);
}

/// transformers v5 proportional: rotated pairs int(partial * head_dim // 2),
/// the whole head rotates, factor (default 1) divides the live frequencies.
inline void json_read_proportional(rope_config& cfg, const nlohmann::json& block, const std::string& bname,
                                   double partial, const std::string& pkey) {
  cfg.type = rope_type::proportional;
  cfg.rotary_dim = 0;
  const double k = std::floor(partial * static_cast<double>(cfg.head_dim) / 2.0);
  if (k < 1.0) json_fail(pkey, "gives no rotated pairs for rope type 'proportional'");
  cfg.proportional.rotated_pairs = static_cast<int>(k);
  cfg.factor = 1.0;
  if (const auto* v = json_find(block, "factor")) cfg.factor = json_positive(*v, bname + ".factor");
}

}  // namespace detail

inline std::vector<std::pair<std::string, rope_config>> rope_configs_by_layer_type(const nlohmann::json& j,
                                                                                 const json_read_options& opt) {
  std::vector<std::pair<std::string, rope_config>> out;
  const auto* rp = detail::json_find(j, "rope_parameters");
  const bool keyed = rp && rp->is_object() && !detail::json_find(*rp, "rope_type") && !detail::json_find(*rp, "type") &&
                     !rp->empty() && std::all_of(rp->begin(), rp->end(), [](const nlohmann::json& v) { return v.is_object(); });
  if (!keyed) {
    out.emplace_back("", rope_config_from_json(j, opt));
    return out;
  }
  for (const auto& item : rp->items()) {
    nlohmann::json one = j;
    one["rope_parameters"] = item.value();
    try {
      out.emplace_back(item.key(), rope_config_from_json(one, opt));
    } catch (const error& e) {
      LONGROPE_THROW("longrope.json", "rope_parameters." + item.key() + ": " + e.what());
    }
  }
  return out;
}

}  // namespace longrope
