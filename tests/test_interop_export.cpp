// `longrope export` (include/longrope/export.hpp), issue 14 acceptance 1: for
// each of the four real Phi configs, export searched factors for hf4, hf5 and
// vLLM; the hf4 output passes a re-implementation of transformers 4.4x
// Phi3Config's rope_scaling checks, every output keeps the input's other keys
// in order, and load_rope_config of every output gives the rope_frequencies the
// input gives with its factors replaced.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include <longrope/export.hpp>
#include <longrope/frequencies.hpp>
#include <longrope/json.hpp>

#include "catch.hpp"
#include "run_cli.hpp"
#include "shared_data.hpp"

using namespace longrope;
using oj = nlohmann::ordered_json;

namespace {

const char* const kPhi[] = {"phi-3-mini-128k-instruct-2024-04-su.json", "phi-3-mini-128k-instruct.json",
                            "phi-3.5-mini-instruct.json", "phi-4-mini-instruct.json"};

std::string cfg_path(const std::string& name) { return (longrope_test::test_data_dir() / "configs" / name).string(); }

oj read_oj(const std::string& path) {
  std::ifstream in(path);
  REQUIRE(in.good());
  return oj::parse(in);
}

std::filesystem::path tmp(const std::string& name) {
  return std::filesystem::temp_directory_path() / ("longrope_interop_" + std::to_string(::getpid()) + "_" + name);
}

void write(const std::filesystem::path& p, const oj& j) {
  std::ofstream out(p);
  out << j.dump(2);
}

/// transformers 4.4x Phi3Config (configuration_phi3.py): _rope_scaling_adjustment
/// then _rope_scaling_validation, re-implemented on the JSON. Returns "" when the
/// config is accepted, else the reason transformers would raise.
std::string phi3config_4_4x_rejects(oj config) {
  if (!config.contains("rope_scaling") || config["rope_scaling"].is_null()) return "";
  oj& rs = config["rope_scaling"];
  // _rope_scaling_adjustment: "su" and "yarn" are renamed "longrope".
  if (rs.is_object() && rs.contains("type") && rs["type"].is_string()) {
    const std::string t = rs["type"].get<std::string>();
    if (t == "su" || t == "yarn") rs["type"] = "longrope";
  }
  if (!rs.is_object() || rs.size() != 3) return "rope_scaling must be a dictionary with three fields";
  if (!rs.contains("type") || !rs["type"].is_string() || rs["type"].get<std::string>() != "longrope") {
    return "rope_scaling's type field must be one of ['longrope']";
  }
  for (const char* k : {"short_factor", "long_factor"}) {
    if (!rs.contains(k) || !rs[k].is_array()) return std::string(k) + " must be a list of numbers";
    for (const auto& x : rs[k]) {
      // Python: isinstance(x, (int, float)); JSON true/false load as bool, a subclass of int.
      if (!x.is_number() && !x.is_boolean()) return std::string(k) + " must be a list of numbers";
    }
  }
  // rotary_ndims = int(hidden_size // num_attention_heads * partial_rotary_factor)
  const std::int64_t hidden = config.at("hidden_size").get<std::int64_t>();
  const std::int64_t heads = config.at("num_attention_heads").get<std::int64_t>();
  const double partial = config.contains("partial_rotary_factor") ? config["partial_rotary_factor"].get<double>() : 1.0;
  const auto rotary_ndims = static_cast<std::int64_t>(static_cast<double>(hidden / heads) * partial);
  for (const char* k : {"short_factor", "long_factor"}) {
    if (static_cast<std::int64_t>(rs[k].size()) != rotary_ndims / 2) {
      return std::string(k) + " must have length rotary_ndims // 2 = " + std::to_string(rotary_ndims / 2);
    }
  }
  return "";
}

/// Searched-looking factors: non-decreasing, distinct from every Phi set.
std::vector<double> searched(int pairs, double scale) {
  std::vector<double> v;
  for (int i = 0; i < pairs; ++i) v.push_back(1.0 + scale * i * i / (pairs * pairs) + 0.001 * i);
  return v;
}

void require_same_frequencies(const rope_config& got, const rope_config& want) {
  for (std::int64_t len : {std::int64_t{0}, std::int64_t{4096}, std::int64_t{4097}, std::int64_t{131072}}) {
    INFO("seq_len " << len);
    const rope_frequencies a(got, {len}), b(want, {len});
    CHECK(a.inv_freq() == b.inv_freq());
    CHECK(a.rescale_factors() == b.rescale_factors());
    CHECK(a.attention_factor() == b.attention_factor());
    CHECK(a.rotary_dim() == b.rotary_dim());
    CHECK(a.layout() == b.layout());
  }
}

/// Every key of `in` other than the rope ones appears in `out` with the same
/// value and in the same relative order.
void require_rest_kept(const oj& in, const oj& out) {
  std::vector<std::string> in_keys, out_keys;
  for (const auto& it : in.items()) {
    if (it.key() == "rope_scaling" || it.key() == "rope_parameters" || it.key() == "rope_theta") continue;
    in_keys.push_back(it.key());
    REQUIRE(out.contains(it.key()));
    CHECK(out[it.key()] == it.value());
  }
  for (const auto& it : out.items()) {
    if (std::find(in_keys.begin(), in_keys.end(), it.key()) != in_keys.end()) out_keys.push_back(it.key());
  }
  CHECK(in_keys == out_keys);
}

}  // namespace

TEST_CASE("export: the four Phi configs for hf4, hf5 and vllm (acceptance 1)", "[interop][export]") {
  for (const char* name : kPhi) {
    INFO(name);
    const oj in = read_oj(cfg_path(name));
    rope_config want = load_rope_config(cfg_path(name));
    const auto longs = searched(want.pairs(), 40.0);
    const auto shorts = searched(want.pairs(), 0.5);
    want.longrope.long_factor = longs;
    const auto result = tmp("result.json");
    write(result, oj{{"rescale_factors", longs}, {"n_hat", 0}, {"attention_factor", 1.19}});
    for (const char* target : {"hf4", "hf5", "vllm"}) {
      INFO(target);
      const auto out_path = tmp(std::string(target) + ".json");
      const auto r = longrope_test::run_cli({"export", "--config", cfg_path(name), "--factors", result.string(),
                                             "--target", target, "--out", out_path.string()});
      REQUIRE(r.status == 0);
      CHECK(r.err.empty());
      const oj out = read_oj(out_path.string());
      require_rest_kept(in, out);
      if (std::string(target) != "hf5") {
        CHECK(phi3config_4_4x_rejects(out) == "");
        CHECK(out["rope_scaling"].size() == 3);  // vllm: no mscale needed for the derived factor
        CHECK(out["original_max_position_embeddings"] == 4096);
      } else {
        CHECK_FALSE(out.contains("rope_scaling"));
        CHECK(out["rope_parameters"]["rope_type"] == "longrope");
        CHECK(out["rope_parameters"]["original_max_position_embeddings"] == 4096);
        CHECK(out["rope_parameters"]["rope_theta"] == 10000.0);
      }
      require_same_frequencies(load_rope_config(out_path.string()), want);
      std::filesystem::remove(out_path);
    }
    // --short-factors replaces the short set too.
    const auto result2 = tmp("result2.json");
    write(result2, oj{{"rescale_factors", shorts}, {"n_hat", 0}});
    const auto out_path = tmp("hf4s.json");
    REQUIRE(longrope_test::run_cli({"export", "--config", cfg_path(name), "--factors", result.string(),
                                    "--short-factors", result2.string(), "--target", "hf4", "--out",
                                    out_path.string()})
                .status == 0);
    rope_config want2 = want;
    want2.longrope.short_factor = shorts;
    require_same_frequencies(load_rope_config(out_path.string()), want2);
    CHECK(phi3config_4_4x_rejects(read_oj(out_path.string())) == "");
    std::filesystem::remove(out_path);
    std::filesystem::remove(result);
    std::filesystem::remove(result2);
  }
}

TEST_CASE("export: the validator re-implementation rejects what 4.4x rejects", "[interop][export]") {
  // The checks must be able to fail: each broken variant of a valid config is refused.
  const oj good = read_oj(cfg_path("phi-3.5-mini-instruct.json"));
  CHECK(phi3config_4_4x_rejects(good) == "");
  oj extra = good;
  extra["rope_scaling"]["original_max_position_embeddings"] = 4096;
  CHECK(phi3config_4_4x_rejects(extra) != "");
  oj what = oj::parse(to_config_json(load_rope_config(cfg_path("phi-3.5-mini-instruct.json"))).dump());  // longrope's own 6-key block
  what["hidden_size"] = 3072;
  what["num_attention_heads"] = 32;
  CHECK(phi3config_4_4x_rejects(what) != "");
  oj short_list = good;
  short_list["rope_scaling"]["long_factor"].erase(0);
  CHECK(phi3config_4_4x_rejects(short_list) != "");
  oj bad_type = good;
  bad_type["rope_scaling"]["type"] = "linear";
  CHECK(phi3config_4_4x_rejects(bad_type) != "");
  oj su = good;
  su["rope_scaling"]["type"] = "su";
  CHECK(phi3config_4_4x_rejects(su) == "");
  oj strings = good;
  strings["rope_scaling"]["short_factor"][0] = "1.0";
  CHECK(phi3config_4_4x_rejects(strings) != "");
}

TEST_CASE("export: what a target cannot express is refused", "[interop][export]") {
  const std::string phi = cfg_path("phi-4-mini-instruct.json");
  const int pairs = load_rope_config(phi).pairs();
  const auto result = tmp("nhat.json");
  const auto out = tmp("out.json");
  write(result, oj{{"rescale_factors", searched(pairs, 30.0)}, {"n_hat", 4}});
  for (const char* target : {"hf4", "hf5", "vllm"}) {
    const auto r = longrope_test::run_cli({"export", "--config", phi, "--factors", result.string(), "--target", target,
                                           "--out", out.string()});
    CHECK(r.status != 0);
    CHECK(r.err.find("[longrope.export] n_hat = 4 cannot be expressed") != std::string::npos);
    CHECK(r.err.find("--drop-n-hat") != std::string::npos);
    const auto d = longrope_test::run_cli({"export", "--config", phi, "--factors", result.string(), "--target", target,
                                           "--out", out.string(), "--drop-n-hat"});
    CHECK(d.status == 0);
  }
  // A per-pair mscale (LongRoPE2-style, issue 12) has no key in any target.
  write(result, oj{{"rescale_factors", searched(pairs, 30.0)}, {"n_hat", 0}, {"mscale", std::vector<double>(pairs, 1.1)}});
  auto r = longrope_test::run_cli({"export", "--config", phi, "--factors", result.string(), "--target", "hf5", "--out",
                                   out.string()});
  CHECK(r.status != 0);
  CHECK(r.err.find("per-pair mscale cannot be expressed") != std::string::npos);
  // An attention factor: not in hf4, attention_factor in hf5, long_mscale in vllm.
  write(result, oj{{"rescale_factors", searched(pairs, 30.0)}, {"n_hat", 0}});
  r = longrope_test::run_cli({"export", "--config", phi, "--factors", result.string(), "--target", "hf4", "--out",
                              out.string(), "--attention-factor", "1.25"});
  CHECK(r.status != 0);
  CHECK(r.err.find("attention factor cannot be expressed for target hf4") != std::string::npos);
  rope_config want = load_rope_config(phi);
  want.longrope.long_factor = searched(pairs, 30.0);
  for (const char* target : {"hf5", "vllm"}) {
    INFO(target);
    REQUIRE(longrope_test::run_cli({"export", "--config", phi, "--factors", result.string(), "--target", target,
                                    "--out", out.string(), "--attention-factor", "1.25"})
                .status == 0);
    const rope_config got = load_rope_config(out.string());
    CHECK(rope_frequencies(got, {131072}).attention_factor() == 1.25);
    // transformers applies its one attention_factor to both sets; vLLM's short set keeps the derived one.
    const double short_want = std::string(target) == "hf5" ? 1.25 : rope_frequencies(want, {100}).attention_factor();
    CHECK(rope_frequencies(got, {100}).attention_factor() == short_want);
    CHECK(rope_frequencies(got, {131072}).inv_freq() == rope_frequencies(want, {131072}).inv_freq());
    if (std::string(target) == "vllm") CHECK(read_oj(out.string())["rope_scaling"]["long_mscale"] == 1.25);
  }
  // Wrong factor count, non-LongRoPE input, unknown target.
  write(result, oj{{"rescale_factors", searched(pairs - 1, 30.0)}});
  r = longrope_test::run_cli({"export", "--config", phi, "--factors", result.string(), "--target", "hf4", "--out", out.string()});
  CHECK(r.status != 0);
  CHECK(r.err.find("expected 48 values") != std::string::npos);
  r = longrope_test::run_cli({"export", "--config", cfg_path("llama3.json"), "--factors", result.string(), "--target",
                              "hf4", "--out", out.string()});
  CHECK(r.status != 0);
  CHECK(r.err.find("rope type is 'llama3'") != std::string::npos);
  r = longrope_test::run_cli({"export", "--config", phi, "--factors", result.string(), "--target", "hf3", "--out", out.string()});
  CHECK(r.status != 0);
  CHECK(r.err.find("unknown target 'hf3'") != std::string::npos);
  std::filesystem::remove(result);
  std::filesystem::remove(out);
}

TEST_CASE("export: a transformers v5 input (rope_parameters) goes back to hf4", "[interop][export]") {
  oj in = read_oj(cfg_path("phi-3-mini-128k-instruct.json"));
  export_options o;
  o.target = export_target::hf5;
  rope_config want = load_rope_config(cfg_path("phi-3-mini-128k-instruct.json"));
  o.long_factors = searched(want.pairs(), 20.0);
  want.longrope.long_factor = o.long_factors;
  const oj v5 = export_config(in, o);
  o.target = export_target::hf4;
  const oj back = export_config(v5, o);
  CHECK(phi3config_4_4x_rejects(back) == "");
  CHECK(back["rope_theta"] == 10000.0);
  require_same_frequencies(rope_config_from_json(nlohmann::json::parse(back.dump())), want);
  require_same_frequencies(rope_config_from_json(nlohmann::json::parse(v5.dump())), want);
}
