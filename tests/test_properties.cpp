// Property tests of the frequencies and tables (no reference values needed):
// pair norms preserved, relative-position invariance, lambda = 1 equals plain
// RoPE, the n_hat boundary exactly at p = n_hat, factor-set policies.
// Vectors are rotated here from fill_table rows (the test's own rotation; the
// library's kernels in rotate.hpp are tested elsewhere).
#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include <longrope/json.hpp>
#include <longrope/longrope.hpp>

#include "catch.hpp"
#include "shared_data.hpp"

using namespace longrope;

namespace {

const std::int64_t kPositions[] = {0, 1, 7, 4095, 4096, 131071, 2097152, 16777215};

std::vector<std::string> config_files() {
  return {"phi-3-mini-128k-instruct-2024-04-su.json", "phi-3-mini-128k-instruct.json", "phi-3.5-mini-instruct.json",
          "phi-4-mini-instruct.json", "plain-llama2.json", "linear-partial-neox.json", "ntk-static.json",
          "dynamic-ntk.json", "yarn-plain.json", "yarn-deepseek-mscale.json", "yarn-qwen-notruncate.json",
          "llama3.json", "longrope-nhat-partial.json"};
}

rope_config load(const std::string& name) {
  return load_rope_config((longrope_test::test_data_dir() / "configs" / name).string());
}

/// One table row (pair order) for position p.
template <class T>
void row(const rope_frequencies& f, std::int64_t p, std::vector<T>& c, std::vector<T>& s,
         angle_precision prec = angle_precision::exact) {
  c.resize(static_cast<std::size_t>(f.pairs()));
  s.resize(c.size());
  fill_table<T>(f, &p, 1, {c.data(), 1, f.pairs()}, {s.data(), 1, f.pairs()}, prec);
}

/// Rotates one head vector (head_dim values) with a table row, in double.
std::vector<double> rotate_vec(const rope_frequencies& f, const std::vector<double>& x, const std::vector<double>& c,
                               const std::vector<double>& s) {
  std::vector<double> y = x;
  const int n = f.pairs();
  for (int i = 0; i < n; ++i) {
    const auto a = static_cast<std::size_t>(f.layout() == pair_layout::half_split ? i : 2 * i);
    const auto b = static_cast<std::size_t>(f.layout() == pair_layout::half_split ? i + n : 2 * i + 1);
    const auto k = static_cast<std::size_t>(i);
    y[a] = x[a] * c[k] - x[b] * s[k];
    y[b] = x[a] * s[k] + x[b] * c[k];
  }
  return y;
}

std::vector<double> random_vec(std::mt19937_64& rng, int n) {
  std::normal_distribution<double> g;
  std::vector<double> v(static_cast<std::size_t>(n));
  for (auto& x : v) x = g(rng);
  return v;
}

double dot(const std::vector<double>& a, const std::vector<double>& b) {
  double s = 0;
  for (std::size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
  return s;
}

}  // namespace

TEST_CASE("rotations preserve every pair's norm (times the attention factor)", "[properties]") {
  std::mt19937_64 rng(1);
  for (const auto& name : config_files()) {
    INFO(name);
    for (std::int64_t seq : {std::int64_t{0}, std::int64_t{1} << 20}) {
      const rope_frequencies f(load(name), {seq});
      const double att = f.attention_factor();
      std::vector<float> cf, sf;
      std::vector<double> cd, sd;
      for (std::int64_t p : kPositions) {
        INFO("p = " << p);
        row(f, p, cf, sf);
        row(f, p, cd, sd);
        double worst_f = 0, worst_d = 0;
        for (std::size_t i = 0; i < cf.size(); ++i) {
          const double nf = std::hypot(static_cast<double>(cf[i]), static_cast<double>(sf[i]));
          worst_f = std::max(worst_f, std::abs(nf - att));
          worst_d = std::max(worst_d, std::abs(std::hypot(cd[i], sd[i]) - att));
        }
        CHECK(worst_f <= 2e-7);
        CHECK(worst_d <= 1e-15);
        // A random head vector: each rotated pair keeps its norm (x att).
        const auto x = random_vec(rng, f.head_dim());
        const auto y = rotate_vec(f, x, cd, sd);
        const int n = f.pairs();
        for (int i = 0; i < n; ++i) {
          const auto a = static_cast<std::size_t>(f.layout() == pair_layout::half_split ? i : 2 * i);
          const auto b = static_cast<std::size_t>(f.layout() == pair_layout::half_split ? i + n : 2 * i + 1);
          CHECK(std::hypot(y[a], y[b]) == Approx(att * std::hypot(x[a], x[b])).epsilon(1e-13));
        }
        for (auto k = static_cast<std::size_t>(f.rotary_dim()); k < x.size(); ++k) CHECK(y[k] == x[k]);
      }
    }
  }
}

TEST_CASE("<R(m) q, R(n) k> depends only on m - n", "[properties]") {
  std::mt19937_64 rng(2);
  for (const auto& name : config_files()) {
    INFO(name);
    rope_config cfg = load(name);
    cfg.n_hat = 0;  // n_hat deliberately breaks invariance below the cutoff
    const rope_frequencies f(cfg, {131072});
    const auto q = random_vec(rng, f.head_dim());
    const auto k = random_vec(rng, f.head_dim());
    const double scale = std::sqrt(dot(q, q) * dot(k, k)) * f.attention_factor() * f.attention_factor();
    for (std::int64_t delta : {std::int64_t{0}, std::int64_t{1}, std::int64_t{37}, std::int64_t{4096}}) {
      INFO("m - n = " << delta);
      double first = 0;
      bool have = false;
      for (std::int64_t nn : {std::int64_t{0}, std::int64_t{5}, std::int64_t{4000}, std::int64_t{131000},
                              std::int64_t{2097152}, std::int64_t{16777215} - delta}) {
        // float tables, as a model would use them
        std::vector<float> cm, sm, cn, sn;
        row(f, nn + delta, cm, sm);
        row(f, nn, cn, sn);
        const auto rq = rotate_vec(f, q, std::vector<double>(cm.begin(), cm.end()), std::vector<double>(sm.begin(), sm.end()));
        const auto rk = rotate_vec(f, k, std::vector<double>(cn.begin(), cn.end()), std::vector<double>(sn.begin(), sn.end()));
        const double v = dot(rq, rk);
        if (!have) {
          first = v;
          have = true;
        } else {
          INFO("n = " << nn);
          // Each float table entry is within 2e-7 of the truth: the dot
          // product moves by at most ~4 * 2e-7 * |q||k| * att.
          CHECK(std::abs(v - first) <= 1e-6 * scale);
        }
      }
    }
  }
}

TEST_CASE("lambda = 1 (and scale 1) equals plain RoPE exactly", "[properties]") {
  rope_config plain;
  plain.head_dim = 96;
  const rope_frequencies fp(plain);

  rope_config lr = plain;
  lr.type = rope_type::longrope;
  lr.longrope.short_factor.assign(48, 1.0);
  lr.longrope.long_factor.assign(48, 1.0);
  lr.longrope.original_max_position = 4096;
  lr.max_position_embeddings = 4096;  // s = 1: attention factor 1

  rope_config pi = plain;
  pi.type = rope_type::linear;
  pi.factor = 1.0;

  rope_config yarn = plain;
  yarn.type = rope_type::yarn;
  yarn.yarn.factor = 1.0;
  yarn.yarn.original_max_position = 4096;

  rope_config llama3 = plain;
  llama3.type = rope_type::llama3;
  llama3.llama3.factor = 1.0;

  // yarn and llama3 at factor 1 blend theta/1 and theta with weights (r, 1 - r),
  // which rounds to within an ulp of theta rather than exactly.
  for (const auto* c : {&yarn, &llama3}) {
    const rope_frequencies f(*c);
    CHECK(f.attention_factor() == 1.0);
    for (std::size_t i = 0; i < fp.inv_freq().size(); ++i) {
      CHECK(f.inv_freq()[i] == Approx(fp.inv_freq()[i]).epsilon(3e-16));
    }
  }
  for (const auto* c : {&lr, &pi}) {
    INFO(to_string(c->type));
    for (std::int64_t seq : {std::int64_t{0}, std::int64_t{100000}}) {
      const rope_frequencies f(*c, {seq});
      CHECK(f.attention_factor() == 1.0);
      CHECK(f.inv_freq() == fp.inv_freq());
      for (std::int64_t p : kPositions) {
        std::vector<float> c1, s1, c2, s2;
        row(f, p, c1, s1);
        row(fp, p, c2, s2);
        CHECK(c1 == c2);
        CHECK(s1 == s2);
      }
    }
  }
}

TEST_CASE("n_hat: positions below it keep the unscaled angles, from it on the scaled ones", "[properties]") {
  for (std::int64_t k : {std::int64_t{1}, std::int64_t{4}, std::int64_t{64}, std::int64_t{4096}}) {
    INFO("n_hat = " << k);
    rope_config cfg = load("phi-3.5-mini-instruct.json");
    const rope_frequencies scaled(cfg, {131072});
    rope_config unscaled_cfg = cfg;
    unscaled_cfg.longrope.long_factor.assign(48, 1.0);
    const rope_frequencies unscaled(unscaled_cfg, {131072});
    cfg.n_hat = k;
    const rope_frequencies f(cfg, {131072});
    CHECK(f.attention_factor() == scaled.attention_factor());
    for (std::int64_t p : {std::int64_t{0}, k - 1, k, k + 1}) {
      if (p < 0) continue;
      INFO("p = " << p);
      std::vector<double> c, s, ce, se;
      row(f, p, c, s);
      row(p < k ? unscaled : scaled, p, ce, se);
      CHECK(c == ce);
      CHECK(s == se);
      for (int i = 0; i < f.pairs(); ++i) {
        CHECK(f.frequency(p, i) == (p < k ? f.theta() : f.inv_freq())[static_cast<std::size_t>(i)]);
      }
    }
    // The boundary really changes the angle (lambda_i > 1 for every Phi-3.5 long factor but the first).
    std::vector<double> c1, s1, c2, s2;
    row(f, k, c1, s1);
    row(unscaled, k, c2, s2);
    CHECK(c1 != c2);
  }
}

TEST_CASE("factor-set policies", "[properties]") {
  const rope_config cfg = load("phi-3.5-mini-instruct.json");
  using fp = factor_policy;
  CHECK(rope_frequencies(cfg, {0, fp::by_sequence_length}).active_factor_set() == factor_set::short_factors);
  CHECK(rope_frequencies(cfg, {4096, fp::by_sequence_length}).active_factor_set() == factor_set::short_factors);
  CHECK(rope_frequencies(cfg, {4097, fp::by_sequence_length}).active_factor_set() == factor_set::long_factors);
  CHECK(rope_frequencies(cfg, {131072, fp::by_context_capacity}).active_factor_set() == factor_set::long_factors);
  CHECK(rope_frequencies(cfg, {4096, fp::by_context_capacity}).active_factor_set() == factor_set::short_factors);
  CHECK(rope_frequencies(cfg, {10, fp::always_long}).active_factor_set() == factor_set::long_factors);
  CHECK(rope_frequencies(cfg, {1 << 20, fp::always_short}).active_factor_set() == factor_set::short_factors);
  // The attention factor never depends on the factor set.
  CHECK(rope_frequencies(cfg, {10, fp::always_long}).attention_factor() ==
        rope_frequencies(cfg, {10, fp::always_short}).attention_factor());
}

TEST_CASE("dynamic NTK is unscaled up to max_position_embeddings and grows after", "[properties]") {
  const rope_config cfg = load("dynamic-ntk.json");
  const rope_frequencies plain(cfg, {0});
  rope_config none = cfg;
  none.type = rope_type::none;
  CHECK(plain.inv_freq() == rope_frequencies(none).inv_freq());
  CHECK(rope_frequencies(cfg, {4096}).inv_freq() == plain.inv_freq());
  const rope_frequencies grown(cfg, {8192});
  CHECK(grown.inv_freq()[0] == 1.0);
  for (std::size_t i = 1; i < grown.inv_freq().size(); ++i) CHECK(grown.inv_freq()[i] < plain.inv_freq()[i]);
}
