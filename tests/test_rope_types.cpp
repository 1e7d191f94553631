// The rope types and keys engines ship beyond transformers 4.x (issue 14,
// acceptance 3). Each is checked against an independent long-double evaluation
// of its published formula, written here from the source named in each test
// (never from longrope's code), on configs read through the JSON reader.
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include <longrope/frequencies.hpp>
#include <longrope/json.hpp>

#include "catch.hpp"

using namespace longrope;
using nlohmann::json;

namespace {

using ld = long double;

/// Relative agreement of double results with a long-double reference.
void require_close(const std::vector<double>& got, const std::vector<ld>& want, double rel = 4e-16) {
  REQUIRE(got.size() == want.size());
  for (std::size_t k = 0; k < got.size(); ++k) {
    INFO("pair " << k << ": " << got[k] << " vs " << static_cast<double>(want[k]));
    if (want[k] == 0.0L) {
      CHECK(got[k] == 0.0);
    } else {
      CHECK(std::fabs(static_cast<ld>(got[k]) - want[k]) <= rel * std::fabs(want[k]));
    }
  }
}

std::vector<double> ramp(int n, double lo, double hi) {
  std::vector<double> v;
  for (int i = 0; i < n; ++i) v.push_back(lo + (hi - lo) * i / (n - 1));
  return v;
}

/// 1 / (lambda_i * base^(2i/d)): LongRoPE's inverse frequency (transformers
/// _compute_longrope_parameters, vLLM Phi3LongRoPEScaledRotaryEmbedding._compute_inv_freq).
std::vector<ld> longrope_ref(const std::vector<double>& lambda, ld base, int d) {
  std::vector<ld> v;
  for (std::size_t i = 0; i < lambda.size(); ++i) {
    v.push_back(1.0L / (static_cast<ld>(lambda[i]) * std::pow(base, static_cast<ld>(2 * i) / d)));
  }
  return v;
}

json phi_block(int pairs) {
  return json{{"model_type", "phi3"}, {"head_dim", 2 * pairs}, {"max_position_embeddings", 131072},
              {"original_max_position_embeddings", 4096}, {"rope_theta", 10000.0},
              {"rope_scaling", {{"type", "longrope"}, {"short_factor", ramp(pairs, 1.0, 1.5)},
                                {"long_factor", ramp(pairs, 1.0, 40.0)}}}};
}

}  // namespace

TEST_CASE("proportional (transformers v5) and per-layer-type rope_parameters", "[rope_types]") {
  // Source: transformers v5 modeling_rope_utils._compute_proportional_rope_parameters:
  //   rope_angles = int(partial_rotary_factor * head_dim // 2)
  //   inv_freq[i] = 1 / base^(2i / head_dim) for i < rope_angles, 0 for the other head_dim/2 - rope_angles
  //   inv_freq /= factor (default 1); the whole head rotates (rotate_half), attention factor 1.
  // Gemma-style per-layer-type parameters: one block per layer type.
  const json j = {{"model_type", "gemma4_text"}, {"head_dim", 64}, {"max_position_embeddings", 131072},
                  {"rope_parameters",
                   {{"sliding_attention", {{"rope_type", "default"}, {"rope_theta", 10000.0}}},
                    {"full_attention", {{"rope_type", "proportional"}, {"partial_rotary_factor", 0.25},
                                        {"rope_theta", 1000000.0}, {"factor", 2.0}}}}}};
  const auto per = rope_configs_by_layer_type(j);
  REQUIRE(per.size() == 2);
  CHECK(per[0].first == "full_attention");  // nlohmann::json orders keys alphabetically
  CHECK(per[1].first == "sliding_attention");
  const rope_config& full = per[0].second;
  CHECK(full.type == rope_type::proportional);
  CHECK(full.effective_rotary_dim() == 64);
  CHECK(full.proportional.rotated_pairs == 8);
  const rope_frequencies ff(full);
  std::vector<ld> want;
  for (int i = 0; i < 32; ++i) {
    want.push_back(i < 8 ? 1.0L / std::pow(1000000.0L, static_cast<ld>(2 * i) / 64) / 2.0L : 0.0L);
  }
  require_close(ff.inv_freq(), want);
  CHECK(ff.attention_factor() == 1.0);
  for (int i = 0; i < 32; ++i) CHECK(ff.rescale_factors()[static_cast<std::size_t>(i)] == (i < 8 ? 2.0 : 1.0));
  CHECK(ff.angle(123456, 20) == 0.0);  // a pair at frequency 0 never rotates
  std::vector<ld> plain;
  for (int i = 0; i < 32; ++i) plain.push_back(1.0L / std::pow(10000.0L, static_cast<ld>(2 * i) / 64));
  require_close(rope_frequencies(per[1].second).inv_freq(), plain);
  // rope_config_from_json keeps refusing the keyed form, and names the function that reads it.
  try {
    (void)rope_config_from_json(j);
    FAIL("keyed rope_parameters accepted by rope_config_from_json");
  } catch (const longrope::error& e) {
    CHECK(std::string(e.what()).find("rope_configs_by_layer_type") != std::string::npos);
  }
  // A bad block names its layer type.
  json bad = j;
  bad["rope_parameters"]["full_attention"]["factor"] = -1.0;
  try {
    (void)rope_configs_by_layer_type(bad);
    FAIL("negative factor accepted");
  } catch (const longrope::error& e) {
    CHECK(std::string(e.what()).find("rope_parameters.full_attention") != std::string::npos);
  }
  // Round trip through the writer.
  const rope_config back = rope_config_from_json(to_config_json(full));
  CHECK(rope_frequencies(back).inv_freq() == ff.inv_freq());
}

TEST_CASE("vLLM short_mscale / long_mscale", "[rope_types]") {
  // Source: vLLM Phi3LongRoPEScaledRotaryEmbedding: scale = max_pos / L0,
  // scaling_factor = sqrt(1 + ln scale / ln L0) (1 when scale <= 1);
  // short_mscale, long_mscale default to it; cos/sin of each set are multiplied by its mscale.
  json j = phi_block(16);
  const ld derived = std::sqrt(1.0L + std::log(32.0L) / std::log(4096.0L));
  CHECK(std::fabs(rope_frequencies(rope_config_from_json(j), {100}).attention_factor() - derived) < 3e-16L);
  j["rope_scaling"]["short_mscale"] = 1.0625;
  j["rope_scaling"]["long_mscale"] = 1.3125;
  const rope_config c = rope_config_from_json(j);
  const rope_frequencies s(c, {4096}), l(c, {4097});
  CHECK(s.attention_factor() == 1.0625);
  CHECK(l.attention_factor() == 1.3125);
  require_close(s.inv_freq(), longrope_ref(ramp(16, 1.0, 1.5), 10000.0L, 32));
  require_close(l.inv_freq(), longrope_ref(ramp(16, 1.0, 40.0), 10000.0L, 32));
  j["rope_scaling"]["long_mscale"] = "big";
  CHECK_THROWS_WITH(rope_config_from_json(j), Catch::Matchers::Contains("rope_scaling.long_mscale: expected a number"));
  const rope_config back = rope_config_from_json(to_config_json(c));
  CHECK(rope_frequencies(back, {9000}).attention_factor() == 1.3125);
}

TEST_CASE("length-bucketed factor sets", "[rope_types]") {
  // Source: the official LongRoPE code keeps one searched factor file per target
  // length (microsoft/LongRoPE longrope_scale/{4k,8k,...,2048k}_*.csv); the set for
  // a sequence of length L is the one searched for the smallest target >= L, the
  // largest beyond them all. Frequencies as LongRoPE: 1 / (lambda_i base^(2i/d)).
  json j = phi_block(8);
  const auto a = ramp(8, 1.0, 1.2), b = ramp(8, 1.0, 8.0), c = ramp(8, 1.0, 32.0);
  j["rope_scaling"].erase("short_factor");
  j["rope_scaling"].erase("long_factor");
  j["rope_scaling"]["factor_sets"] = {{{"max_length", 4096}, {"factors", a}},
                                      {{"max_length", 32768}, {"factors", b}, {"attention_factor", 1.125}},
                                      {{"max_length", 131072}, {"factors", c}}};
  const rope_config cfg = rope_config_from_json(j);
  REQUIRE(cfg.longrope.buckets.size() == 3);
  struct expect {
    std::int64_t len;
    int bucket;
    const std::vector<double>* f;
  };
  for (const expect& e : {expect{0, 0, &a}, expect{4096, 0, &a}, expect{4097, 1, &b}, expect{32768, 1, &b},
                          expect{32769, 2, &c}, expect{1000000, 2, &c}}) {
    INFO("length " << e.len);
    const rope_frequencies f(cfg, {e.len});
    CHECK(f.active_bucket() == e.bucket);
    CHECK(f.active_factor_set() == (e.bucket == 0 ? factor_set::short_factors : factor_set::long_factors));
    require_close(f.inv_freq(), longrope_ref(*e.f, 10000.0L, 16));
    CHECK(f.rescale_factors() == *e.f);
    const double want_att = e.bucket == 1 ? 1.125 : static_cast<double>(std::sqrt(1.0L + std::log(32.0L) / std::log(4096.0L)));
    CHECK(std::fabs(f.attention_factor() - want_att) < 1e-15);
  }
  CHECK(rope_frequencies(cfg, {10, factor_policy::always_long}).active_bucket() == 2);
  CHECK(rope_frequencies(cfg, {999999, factor_policy::always_short}).active_bucket() == 0);
  const rope_config back = rope_config_from_json(to_config_json(cfg));
  CHECK(rope_frequencies(back, {20000}).inv_freq() == rope_frequencies(cfg, {20000}).inv_freq());
  j["rope_scaling"]["factor_sets"][2]["max_length"] = 4096;
  CHECK_THROWS_WITH(rope_config_from_json(j), Catch::Matchers::Contains("strictly increasing"));
  j["rope_scaling"]["factor_sets"] = json::array();
  CHECK_THROWS_WITH(rope_config_from_json(j), Catch::Matchers::Contains("factor_sets: expected a non-empty array"));
}

TEST_CASE("a factor key inside a longrope block, as transformers v5 reads it", "[rope_types]") {
  // Source: transformers v5 _compute_longrope_parameters: factor = rope_parameters.get("factor");
  // if factor is None: factor = max_position_embeddings / original_max_position_embeddings;
  // attention = 1 if factor <= 1 else sqrt(1 + ln factor / ln L0). transformers 4.x (rope_scaling
  // with a top-level original length) ignores the factor key and always uses max_pos / L0.
  json v5 = {{"head_dim", 32}, {"max_position_embeddings", 131072},
             {"rope_parameters", {{"rope_type", "longrope"}, {"rope_theta", 10000.0}, {"factor", 16.0},
                                  {"original_max_position_embeddings", 4096},
                                  {"short_factor", ramp(16, 1, 2)}, {"long_factor", ramp(16, 1, 30)}}}};
  const ld want16 = std::sqrt(1.0L + std::log(16.0L) / std::log(4096.0L));
  const ld want32 = std::sqrt(1.0L + std::log(32.0L) / std::log(4096.0L));
  CHECK(std::fabs(rope_frequencies(rope_config_from_json(v5)).attention_factor() - want16) < 3e-16L);
  v5["rope_parameters"]["factor"] = 0.5;  // factor <= 1: attention 1
  CHECK(rope_frequencies(rope_config_from_json(v5)).attention_factor() == 1.0);
  v5["rope_parameters"].erase("factor");
  CHECK(std::fabs(rope_frequencies(rope_config_from_json(v5)).attention_factor() - want32) < 3e-16L);
  json v4 = phi_block(16);
  v4["rope_scaling"]["factor"] = 16.0;
  CHECK(std::fabs(rope_frequencies(rope_config_from_json(v4)).attention_factor() - want32) < 3e-16L);
}

TEST_CASE("unknown rope types keep failing with a clear error", "[rope_types]") {
  json j = {{"head_dim", 32}, {"rope_parameters", {{"rope_type", "mystery"}, {"factor", 2.0}}}};
  CHECK_THROWS_WITH(rope_config_from_json(j), Catch::Matchers::Contains("rope_parameters.rope_type: unknown rope type 'mystery'"));
  j = {{"head_dim", 32}, {"rope_parameters", {{"rope_type", "proportional"}, {"partial_rotary_factor", 0.01}}}};
  CHECK_THROWS_WITH(rope_config_from_json(j), Catch::Matchers::Contains("rope_parameters.partial_rotary_factor: gives rotary_dim 0"));
}
