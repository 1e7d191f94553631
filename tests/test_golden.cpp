// Golden tests: frequencies, attention factors and cos/sin tables of every
// method against tests/data/golden.json, written by the independent mpmath
// reference scripts/reference/gen_golden.py (50 digits, from the formulas, not
// from this code). Configs are read with <longrope/json.hpp> from
// tests/data/configs (the four real Phi configs and synthetic ones).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <fstream>
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

const json& golden() {
  static const json g = [] {
    std::ifstream in(longrope_test::test_data_dir() / "golden.json");
    REQUIRE(in.good());
    return json::parse(in);
  }();
  return g;
}

std::string config_path(const json& c) { return (longrope_test::test_data_dir() / c.at("config").get<std::string>()).string(); }

double rel_err(double got, double want) { return std::abs(got - want) / std::abs(want); }

template <class T>
double max_table_error(const rope_frequencies& f, const json& c, angle_precision prec, const char* cos_key,
                       const char* sin_key) {
  const auto positions = c.at("positions").get<std::vector<std::int64_t>>();
  const auto rows = static_cast<std::ptrdiff_t>(positions.size());
  const int n = f.pairs();
  std::vector<T> cs(static_cast<std::size_t>(rows * n)), sn(cs.size());
  fill_table<T>(f, positions.data(), rows, {cs.data(), rows, n}, {sn.data(), rows, n}, prec);
  double worst = 0.0;
  for (std::ptrdiff_t r = 0; r < rows; ++r) {
    for (int i = 0; i < n; ++i) {
      const auto k = static_cast<std::size_t>(r * n + i);
      const double ec = std::abs(static_cast<double>(cs[k]) - c.at(cos_key)[static_cast<std::size_t>(r)][static_cast<std::size_t>(i)].get<double>());
      const double es = std::abs(static_cast<double>(sn[k]) - c.at(sin_key)[static_cast<std::size_t>(r)][static_cast<std::size_t>(i)].get<double>());
      worst = std::max({worst, ec, es});
    }
  }
  return worst;
}

}  // namespace

TEST_CASE("golden file covers every method and the real Phi configs", "[golden]") {
  std::vector<std::string> types;
  int phi = 0;
  for (const auto& c : golden().at("cases")) {
    types.push_back(c.at("rope_type").get<std::string>());
    if (c.at("name").get<std::string>().rfind("phi-", 0) == 0) ++phi;
  }
  for (const char* t : {"default", "linear", "ntk", "dynamic", "yarn", "llama3", "longrope"}) {
    INFO(t);
    CHECK(std::find(types.begin(), types.end(), t) != types.end());
  }
  CHECK(phi == 8);  // four configs x (short, long)
}

TEST_CASE("frequencies and attention factors match the mpmath reference", "[golden]") {
  for (const auto& c : golden().at("cases")) {
    const std::string name = c.at("name").get<std::string>();
    INFO("case " << name);
    const rope_config cfg = load_rope_config(config_path(c));
    const rope_frequencies f(cfg, {c.at("seq_len").get<std::int64_t>()});
    CHECK(std::string(to_string(f.type())) == c.at("rope_type").get<std::string>());
    CHECK(f.head_dim() == c.at("head_dim").get<int>());
    CHECK(f.rotary_dim() == c.at("rotary_dim").get<int>());
    CHECK(f.n_hat() == c.at("n_hat").get<std::int64_t>());
    if (c.at("factor_set").is_null()) {
      CHECK(f.active_factor_set() == factor_set::none);
    } else {
      CHECK(std::string(to_string(f.active_factor_set())) == c.at("factor_set").get<std::string>());
    }
    CHECK(rel_err(f.attention_factor(), c.at("attention_factor").get<double>()) <= 1e-15);
    const auto inv = c.at("inv_freq").get<std::vector<double>>();
    const auto lam = c.at("rescale_factors").get<std::vector<double>>();
    REQUIRE(inv.size() == static_cast<std::size_t>(f.pairs()));
    double worst_inv = 0.0, worst_lam = 0.0;
    for (std::size_t i = 0; i < inv.size(); ++i) {
      worst_inv = std::max(worst_inv, rel_err(f.inv_freq()[i], inv[i]));
      worst_lam = std::max(worst_lam, rel_err(f.rescale_factors()[i], lam[i]));
    }
    // std::pow and one division: a few ulp (2^-52 = 2.2e-16).
    CHECK(worst_inv <= 2e-15);
    CHECK(worst_lam <= 2e-15);
  }
}

TEST_CASE("Phi configs: attention factor 1.1902380714238083 for both factor sets", "[golden][acceptance]") {
  int seen = 0;
  for (const auto& c : golden().at("cases")) {
    if (c.at("name").get<std::string>().rfind("phi-", 0) != 0) continue;
    ++seen;
    const rope_frequencies f(load_rope_config(config_path(c)), {c.at("seq_len").get<std::int64_t>()});
    CHECK(std::abs(f.attention_factor() - 1.1902380714238083) <= 1e-12);
  }
  CHECK(seen == 8);
}

TEST_CASE("exact tables are within 2e-7 (float) and 1e-8 (double) of the mpmath truth up to 2^24-1",
          "[golden][acceptance]") {
  for (const auto& c : golden().at("cases")) {
    INFO("case " << c.at("name").get<std::string>());
    const rope_frequencies f(load_rope_config(config_path(c)), {c.at("seq_len").get<std::int64_t>()});
    CHECK(max_table_error<float>(f, c, angle_precision::exact, "cos", "sin") <= 2e-7);
    CHECK(max_table_error<double>(f, c, angle_precision::exact, "cos", "sin") <= 1e-8);
  }
}

TEST_CASE("float32 tables follow transformers' float32 angle", "[golden]") {
  // The reference forms float32(float32(inv) * float32(p)) and takes the exact
  // cos/sin of it; the library adds one float cos/sin and one float product
  // with the attention factor: a few float ulp of values <= 1.2.
  for (const auto& c : golden().at("cases")) {
    INFO("case " << c.at("name").get<std::string>());
    const rope_frequencies f(load_rope_config(config_path(c)), {c.at("seq_len").get<std::int64_t>()});
    CHECK(max_table_error<float>(f, c, angle_precision::float32, "cos_f32", "sin_f32") <= 3e-7);
  }
}

TEST_CASE("float32 mode drifts with position where exact mode does not", "[golden]") {
  // Documents why exact is the default: at p = 2^24-1 the float32 angle is off
  // by up to ~1 rad for the highest frequency.
  for (const auto& c : golden().at("cases")) {
    if (c.at("name").get<std::string>() != "phi-3.5-mini-instruct@131072") continue;
    const rope_frequencies f(load_rope_config(config_path(c)), {c.at("seq_len").get<std::int64_t>()});
    CHECK(max_table_error<float>(f, c, angle_precision::float32, "cos", "sin") > 1e-3);
    CHECK(max_table_error<float>(f, c, angle_precision::exact, "cos", "sin") <= 2e-7);
  }
}

TEST_CASE("range tables (fill_table over a position_range) are within 2e-7 of the mpmath truth", "[golden][acceptance]") {
  // The range overload may use a different algorithm (recurrences between
  // exact restarts); it is checked on its own, over whole ranges and over
  // ranges starting at an odd offset.
  const auto& cases = golden().at("range_cases");
  REQUIRE(cases.size() >= 2);
  for (const auto& c : cases) {
    INFO("case " << c.at("name").get<std::string>());
    const rope_frequencies f(load_rope_config(config_path(c)), {c.at("seq_len").get<std::int64_t>()});
    const int n = f.pairs();
    for (const auto& r : c.at("ranges")) {
      const auto b = r.at("begin").get<std::int64_t>(), e = r.at("end").get<std::int64_t>();
      for (std::int64_t skip : {std::int64_t{0}, std::int64_t{7}}) {
        INFO("range [" << b + skip << ", " << e << ")");
        const auto rows = static_cast<std::ptrdiff_t>(e - b - skip);
        std::vector<float> cf(static_cast<std::size_t>(rows * n)), sf(cf.size());
        std::vector<double> cd(cf.size()), sd(cf.size());
        fill_table<float>(f, position_range{b + skip, e}, {cf.data(), rows, n}, {sf.data(), rows, n});
        fill_table<double>(f, position_range{b + skip, e}, {cd.data(), rows, n}, {sd.data(), rows, n});
        double worst_f = 0, worst_d = 0;
        for (std::ptrdiff_t row = 0; row < rows; ++row) {
          const auto& wc = r.at("cos").at(static_cast<std::size_t>(row + skip));
          const auto& ws = r.at("sin").at(static_cast<std::size_t>(row + skip));
          for (int i = 0; i < n; ++i) {
            const auto k = static_cast<std::size_t>(row * n + i);
            const double tc = wc.at(static_cast<std::size_t>(i)).get<double>();
            const double ts = ws.at(static_cast<std::size_t>(i)).get<double>();
            worst_f = std::max({worst_f, std::abs(static_cast<double>(cf[k]) - tc), std::abs(static_cast<double>(sf[k]) - ts)});
            worst_d = std::max({worst_d, std::abs(cd[k] - tc), std::abs(sd[k] - ts)});
          }
        }
        CHECK(worst_f <= 2e-7);
        CHECK(worst_d <= 1e-8);
      }
    }
  }
}
