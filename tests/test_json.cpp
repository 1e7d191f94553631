// Config I/O: reading transformers config.json (every form the issue lists),
// writing rope_scaling blocks, round trips, and every malformed input in
// tests/data/malformed_configs.json failing with an error naming the key.
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include <longrope/json.hpp>
#include <longrope/longrope.hpp>

#include "catch.hpp"
#include "shared_data.hpp"

using namespace longrope;
using nlohmann::json;

namespace {

std::string cfg_path(const std::string& name) {
  return (longrope_test::test_data_dir() / "configs" / name).string();
}

json read_json(const std::string& path) {
  std::ifstream in(path);
  REQUIRE(in.good());
  return json::parse(in);
}

std::string error_of(const json& j, std::string* id = nullptr) {
  try {
    (void)rope_config_from_json(j);
  } catch (const longrope::error& e) {
    if (id) *id = e.id();
    return e.what();
  }
  return "";
}

json phi_like() {
  return json{{"model_type", "phi3"}, {"hidden_size", 64}, {"num_attention_heads", 2},
              {"max_position_embeddings", 131072}, {"original_max_position_embeddings", 4096},
              {"rope_theta", 10000.0},
              {"rope_scaling", {{"type", "longrope"}, {"short_factor", std::vector<double>(16, 1.0)},
                                {"long_factor", std::vector<double>(16, 2.0)}}}};
}

}  // namespace

TEST_CASE("the four real Phi configs", "[json]") {
  for (const char* name : {"phi-3-mini-128k-instruct-2024-04-su.json", "phi-3-mini-128k-instruct.json",
                           "phi-3.5-mini-instruct.json", "phi-4-mini-instruct.json"}) {
    INFO(name);
    const rope_config c = load_rope_config(cfg_path(name));
    const json j = read_json(cfg_path(name));
    CHECK(c.type == rope_type::longrope);
    CHECK(c.layout == pair_layout::half_split);
    CHECK(c.base == 10000.0);
    CHECK(c.effective_rotary_dim() == 96);
    CHECK(c.head_dim == (std::string(name).rfind("phi-4", 0) == 0 ? 128 : 96));
    CHECK(c.max_position_embeddings == 131072);
    CHECK(c.longrope.original_max_position == 4096);
    CHECK_FALSE(c.longrope.factor.has_value());  // s = 131072 / 4096 from the top level
    CHECK(c.longrope.short_factor == j.at("rope_scaling").at("short_factor").get<std::vector<double>>());
    CHECK(c.longrope.long_factor == j.at("rope_scaling").at("long_factor").get<std::vector<double>>());
    CHECK(c.n_hat == 0);
  }
}

TEST_CASE("method names: su, phi3 yarn, rope_type over type, default", "[json]") {
  json j = phi_like();
  j["rope_scaling"]["type"] = "su";
  CHECK(rope_config_from_json(j).type == rope_type::longrope);
  j["rope_scaling"]["type"] = "yarn";  // Phi3Config maps yarn to longrope
  CHECK(rope_config_from_json(j).type == rope_type::longrope);
  j["rope_scaling"]["rope_type"] = "longrope";
  j["rope_scaling"]["type"] = "quantum";  // ignored: rope_type wins
  CHECK(rope_config_from_json(j).type == rope_type::longrope);

  json y = {{"model_type", "llama"}, {"head_dim", 64}, {"max_position_embeddings", 4096},
            {"rope_scaling", {{"type", "yarn"}, {"factor", 4.0}}}};
  const rope_config cy = rope_config_from_json(y);
  CHECK(cy.type == rope_type::yarn);
  CHECK(cy.yarn.factor == 4.0);
  CHECK(cy.yarn.original_max_position == 4096);
  CHECK(cy.yarn.truncate);

  json none = {{"head_dim", 64}, {"rope_scaling", nullptr}};
  CHECK(rope_config_from_json(none).type == rope_type::none);
  none["rope_scaling"] = {{"rope_type", "default"}};
  CHECK(rope_config_from_json(none).type == rope_type::none);
  none.erase("rope_scaling");
  const rope_config cn = rope_config_from_json(none);
  CHECK(cn.type == rope_type::none);
  CHECK(cn.base == 10000.0);

  json gptj = {{"model_type", "gptj"}, {"head_dim", 256}, {"partial_rotary_factor", 0.25}};
  const rope_config cg = rope_config_from_json(gptj);
  CHECK(cg.layout == pair_layout::interleaved);
  CHECK(cg.effective_rotary_dim() == 64);
  CHECK(rope_config_from_json(gptj, {pair_layout::half_split}).layout == pair_layout::half_split);
}

TEST_CASE("original_max_position_embeddings: top level, in the block, absent", "[json]") {
  json j = phi_like();
  SECTION("top level (Phi-3): s = max / original, rope_scaling.factor ignored") {
    j["rope_scaling"]["factor"] = 8.0;
    const rope_frequencies f(rope_config_from_json(j));
    CHECK(f.attention_factor() == Approx(std::sqrt(1 + std::log(32.0) / std::log(4096.0))).epsilon(1e-15));
  }
  SECTION("in the block") {
    j.erase("original_max_position_embeddings");
    j["rope_scaling"]["original_max_position_embeddings"] = 8192;
    const rope_config c = rope_config_from_json(j);
    CHECK(c.longrope.original_max_position == 8192);
    const rope_frequencies f(c);
    CHECK(f.attention_factor() == Approx(std::sqrt(1 + std::log(16.0) / std::log(8192.0))).epsilon(1e-15));
    CHECK(rope_frequencies(c, {8193}).active_factor_set() == factor_set::long_factors);
  }
  SECTION("absent: L0 = max_position_embeddings, s = factor") {
    j.erase("original_max_position_embeddings");
    j["rope_scaling"]["factor"] = 4.0;
    const rope_config c = rope_config_from_json(j);
    CHECK(c.longrope.original_max_position == 131072);
    CHECK(rope_frequencies(c).attention_factor() ==
          Approx(std::sqrt(1 + std::log(4.0) / std::log(131072.0))).epsilon(1e-15));
    j["rope_scaling"].erase("factor");
    CHECK(rope_frequencies(rope_config_from_json(j)).attention_factor() == 1.0);
  }
  SECTION("yarn (transformers 4.x): original in the block redefines the scale as max / original") {
    json y = {{"head_dim", 64}, {"max_position_embeddings", 163840},
              {"rope_scaling", {{"type", "yarn"}, {"factor", 10.0}, {"original_max_position_embeddings", 4096}}}};
    const rope_config c = rope_config_from_json(y);
    CHECK(c.yarn.factor == 40.0);
    CHECK(c.yarn.original_max_position == 4096);
  }
}

TEST_CASE("the rope_parameters form (transformers v5)", "[json]") {
  json j = {{"model_type", "phi3"}, {"hidden_size", 64}, {"num_attention_heads", 2},
            {"max_position_embeddings", 131072},
            {"rope_parameters", {{"rope_type", "longrope"}, {"rope_theta", 500000.0}, {"partial_rotary_factor", 0.5},
                                 {"short_factor", std::vector<double>(8, 1.0)}, {"long_factor", std::vector<double>(8, 3.0)},
                                 {"original_max_position_embeddings", 4096}}}};
  const rope_config c = rope_config_from_json(j);
  CHECK(c.base == 500000.0);
  CHECK(c.head_dim == 32);
  CHECK(c.effective_rotary_dim() == 16);
  CHECK(c.longrope.original_max_position == 4096);
  CHECK(rope_frequencies(c).attention_factor() == Approx(1.1902380714238083).epsilon(1e-15));
  // v5: an explicit factor wins over max / original.
  j["rope_parameters"]["factor"] = 8.0;
  CHECK(rope_frequencies(rope_config_from_json(j)).attention_factor() ==
        Approx(std::sqrt(1 + std::log(8.0) / std::log(4096.0))).epsilon(1e-15));
  // rope_parameters wins over a stale rope_scaling.
  j["rope_scaling"] = {{"type", "linear"}, {"factor", 2.0}};
  CHECK(rope_config_from_json(j).type == rope_type::longrope);
}

TEST_CASE("written configs read back to the same frequencies", "[json]") {
  for (const char* name : {"phi-3-mini-128k-instruct-2024-04-su.json", "phi-3-mini-128k-instruct.json",
                           "phi-3.5-mini-instruct.json", "phi-4-mini-instruct.json", "plain-llama2.json",
                           "linear-partial-neox.json", "ntk-static.json", "dynamic-ntk.json", "yarn-plain.json",
                           "yarn-deepseek-mscale.json", "yarn-qwen-notruncate.json", "llama3.json",
                           "longrope-nhat-partial.json"}) {
    INFO(name);
    const rope_config c = load_rope_config(cfg_path(name));
    const json written = to_config_json(c);
    const rope_config back = rope_config_from_json(json::parse(written.dump()));
    for (std::int64_t seq : {std::int64_t{0}, std::int64_t{1} << 20}) {
      const rope_frequencies a(c, {seq}), b(back, {seq});
      CHECK(a.inv_freq() == b.inv_freq());
      CHECK(a.attention_factor() == b.attention_factor());
      CHECK(a.active_factor_set() == b.active_factor_set());
      CHECK(a.n_hat() == b.n_hat());
      CHECK(a.layout() == b.layout());
      CHECK(a.head_dim() == b.head_dim());
    }
  }
}

TEST_CASE("to_rope_scaling_json writes searched LongRoPE factors", "[json]") {
  rope_config c = load_rope_config(cfg_path("phi-3.5-mini-instruct.json"));
  c.longrope.long_factor[5] = 1.0 / 3.0;  // not representable in a short decimal
  c.n_hat = 16;
  const json b = to_rope_scaling_json(c);
  CHECK(b.at("type") == "longrope");
  CHECK(b.at("rope_type") == "longrope");
  CHECK(b.at("original_max_position_embeddings") == 4096);
  CHECK(b.at("n_hat") == 16);
  CHECK(b.at("short_factor").size() == 48);
  CHECK(b.at("long_factor").size() == 48);
  CHECK_FALSE(b.contains("factor"));
  // Doubles survive the text round trip exactly.
  const json back = json::parse(b.dump());
  CHECK(back.at("long_factor").get<std::vector<double>>() == c.longrope.long_factor);
  // Into a model config: the model's own fields plus the new block read back.
  json model = read_json(cfg_path("phi-3.5-mini-instruct.json"));
  model["rope_scaling"] = back;
  const rope_config r = rope_config_from_json(model);
  CHECK(r.longrope.long_factor == c.longrope.long_factor);
  CHECK(r.n_hat == 16);
  rope_config plain;
  plain.head_dim = 64;
  CHECK(to_rope_scaling_json(plain).is_null());
  // Invalid configs are refused, not written.
  rope_config bad = c;
  bad.longrope.long_factor.pop_back();
  CHECK_THROWS_AS(to_rope_scaling_json(bad), longrope::error);
}

TEST_CASE("every malformed config fails with an error naming the key", "[json][acceptance]") {
  const json cases = read_json((longrope_test::test_data_dir() / "malformed_configs.json").string());
  const auto dir = std::filesystem::temp_directory_path();
  int n = 0;
  for (const auto& c : cases.at("cases")) {
    const std::string name = c.at("name").get<std::string>();
    const std::string expect = c.at("expect").get<std::string>();
    INFO("case " << name);
    // Through the file reader, as the CLI uses it.
    const auto path = dir / ("longrope_test_json_" + name + ".json");
    {
      std::ofstream out(path, std::ios::binary);
      out << (c.contains("raw") ? c.at("raw").get<std::string>() : c.at("config").dump());
    }
    std::string what, id;
    try {
      (void)load_rope_config(path.string());
    } catch (const longrope::error& e) {
      what = e.what();
      id = e.id();
    }
    std::filesystem::remove(path);
    CHECK(id == "longrope.json");
    CHECK_THAT(what, Catch::Contains(expect));
    CHECK(what.find('\n') == std::string::npos);
    ++n;
  }
  CHECK(n >= 40);
}

TEST_CASE("in-memory values JSON text cannot hold: NaN and infinity", "[json]") {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double inf = std::numeric_limits<double>::infinity();
  json j = phi_like();
  j["rope_scaling"]["long_factor"][2] = nan;
  CHECK_THAT(error_of(j), Catch::Contains("rope_scaling.long_factor[2]: must be finite"));
  j = phi_like();
  j["rope_theta"] = inf;
  CHECK_THAT(error_of(j), Catch::Contains("rope_theta: must be finite"));
  j = phi_like();
  j["partial_rotary_factor"] = nan;
  CHECK_THAT(error_of(j), Catch::Contains("partial_rotary_factor: must be finite"));
  j = phi_like();
  j["max_position_embeddings"] = nan;
  CHECK_THAT(error_of(j), Catch::Contains("max_position_embeddings: expected an integer"));
  std::string id;
  (void)error_of(json::array(), &id);
  CHECK(id == "longrope.json");
}

TEST_CASE("NTK methods need more than one rotary pair", "[json]") {
  json j = {{"head_dim", 2}, {"max_position_embeddings", 4096}, {"rope_scaling", {{"type", "dynamic"}, {"factor", 2.0}}}};
  CHECK_THAT(error_of(j), Catch::Contains("rotary_dim: dynamic NTK needs rotary_dim > 2"));
  j["rope_scaling"]["type"] = "ntk";
  CHECK_THAT(error_of(j), Catch::Contains("rotary_dim: NTK scaling needs rotary_dim > 2"));
}

TEST_CASE("a missing file is an I/O error naming the path", "[json]") {
  try {
    (void)load_rope_config("/nonexistent/longrope/config.json");
    FAIL("no error");
  } catch (const longrope::error& e) {
    CHECK(e.id() == "longrope.io");
    CHECK_THAT(e.what(), Catch::Contains("cannot read /nonexistent/longrope/config.json: No such file or directory"));
  }
}
