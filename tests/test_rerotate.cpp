// KV-cache re-rotation: keys rotated with the short factors and re-rotated to
// the long ones equal keys rotated directly with the long factors, to float
// rounding. Rotations here are applied by the test itself from fill_table rows.
#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include <longrope/json.hpp>
#include <longrope/longrope.hpp>
#include <longrope/rerotate.hpp>

#include "catch.hpp"
#include "shared_data.hpp"

using namespace longrope;

namespace {

rope_config load(const std::string& name) {
  return load_rope_config((longrope_test::test_data_dir() / "configs" / name).string());
}

/// Rotates every (b, t, h) head of `x` (values in double) with f, from a double table.
template <class T>
void rotate_all(const rope_frequencies& f, heads_view<T> x, const std::vector<std::int64_t>& pos) {
  const int n = f.pairs();
  std::vector<double> c(static_cast<std::size_t>(n)), s(c.size());
  for (std::ptrdiff_t b = 0; b < x.batch; ++b) {
    for (std::ptrdiff_t t = 0; t < x.tokens; ++t) {
      const std::int64_t p = pos[static_cast<std::size_t>(b * x.tokens + t)];
      fill_table<double>(f, &p, 1, {c.data(), 1, n}, {s.data(), 1, n});
      for (std::ptrdiff_t h = 0; h < x.heads; ++h) {
        T* v = x.at(b, t, h);
        for (int i = 0; i < n; ++i) {
          T& a = f.layout() == pair_layout::half_split ? v[i] : v[2 * i];
          T& bb = f.layout() == pair_layout::half_split ? v[i + n] : v[2 * i + 1];
          const double x0 = static_cast<double>(a), x1 = static_cast<double>(bb);
          const auto k = static_cast<std::size_t>(i);
          a = static_cast<T>(x0 * c[k] - x1 * s[k]);
          bb = static_cast<T>(x0 * s[k] + x1 * c[k]);
        }
      }
    }
  }
}

template <class T>
void check_equivalence(const rope_config& cfg, pair_layout layout, double tol) {
  rope_config c = cfg;
  c.layout = layout;
  const rope_frequencies from(c, {0, factor_policy::always_short});
  const rope_frequencies to(c, {0, factor_policy::always_long});
  const std::ptrdiff_t batch = 2, tokens = 24, heads = 3, hd = c.head_dim;
  std::mt19937_64 rng(42);
  std::normal_distribution<double> g;
  std::uniform_int_distribution<std::int64_t> up(0, (std::int64_t{1} << 24) - 1);
  std::vector<std::int64_t> pos(static_cast<std::size_t>(batch * tokens));
  for (std::size_t i = 0; i < pos.size(); ++i) pos[i] = i < 8 ? static_cast<std::int64_t>(i) * 4095 : up(rng);
  pos[9] = 131071;
  pos[10] = std::int64_t{1} << 21;
  pos[11] = (std::int64_t{1} << 24) - 1;
  std::vector<T> raw(static_cast<std::size_t>(batch * tokens * heads * hd));
  for (auto& v : raw) v = static_cast<T>(g(rng));

  // Head-major cache [batch][heads][tokens][head_dim], as a KV cache stores it.
  std::vector<T> a = raw, direct = raw;
  auto va = head_major(a.data(), batch, heads, tokens, hd);
  auto vd = head_major(direct.data(), batch, heads, tokens, hd);
  rotate_all(from, va, pos);
  rotate_all(to, vd, pos);
  rerotate(from, to, va, positions_view{pos.data(), tokens});
  double worst = 0, scale = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    worst = std::max(worst, std::abs(static_cast<double>(a[i]) - static_cast<double>(direct[i])));
    scale = std::max(scale, std::abs(static_cast<double>(direct[i])));
  }
  INFO("max |rerotated - direct| = " << worst << ", max |x| = " << scale);
  CHECK(worst <= tol * scale);
  // The pass-through channels are untouched.
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (static_cast<int>(i % static_cast<std::size_t>(hd)) >= c.effective_rotary_dim()) REQUIRE(a[i] == direct[i]);
  }
}

}  // namespace

TEST_CASE("re-rotated keys equal keys rotated directly with the long factors", "[rerotate]") {
  for (const char* name : {"phi-3.5-mini-instruct.json", "phi-4-mini-instruct.json", "longrope-nhat-partial.json"}) {
    INFO(name);
    const rope_config cfg = load(name);
    for (auto layout : {pair_layout::half_split, pair_layout::interleaved}) {
      INFO(to_string(layout));
      // float: two float roundings on each side, values up to ~5: a few ulp.
      check_equivalence<float>(cfg, layout, 4e-7);
      // double: both sides carry the double angle error p * ulp(inv) ~ 2e-9 at p = 2^24.
      check_equivalence<double>(cfg, layout, 1e-8);
    }
  }
}

TEST_CASE("re-rotation between different methods and attention factors", "[rerotate]") {
  // yarn -> plain: the attention factors differ, the ratio is applied too.
  rope_config y = load("yarn-plain.json");
  rope_config p = y;
  p.type = rope_type::none;
  const rope_frequencies fy(y), fp(p);
  REQUIRE(fy.attention_factor() != fp.attention_factor());
  std::vector<std::int64_t> pos = {0, 1, 4096, 131071, 16777215};
  const std::ptrdiff_t hd = y.head_dim;
  std::vector<float> k(static_cast<std::size_t>(5 * hd));
  std::mt19937 rng(3);
  std::normal_distribution<float> g;
  for (auto& v : k) v = g(rng);
  std::vector<float> direct = k;
  rotate_all(fy, token_major(k.data(), 1, 5, 1, hd), pos);
  rotate_all(fp, token_major(direct.data(), 1, 5, 1, hd), pos);
  rerotate(fy, fp, token_major(k.data(), 1, 5, 1, hd), positions_view{pos.data(), 0});
  for (std::size_t i = 0; i < k.size(); ++i) CHECK(k[i] == Approx(direct[i]).margin(2e-6));
}

TEST_CASE("re-rotation leaves identical pairs and positions below n_hat bit-identical", "[rerotate]") {
  const rope_config cfg = load("longrope-nhat-partial.json");  // n_hat 4, short_factor[0] == long_factor[0] == 1
  const rope_frequencies from(cfg, {0}), to(cfg, {65536});
  REQUIRE(from.n_hat() == 4);
  const std::ptrdiff_t hd = cfg.head_dim;
  std::vector<double> k(static_cast<std::size_t>(3 * hd));
  for (std::size_t i = 0; i < k.size(); ++i) k[i] = std::sin(static_cast<double>(i) + 0.5);
  const std::vector<double> before = k;
  std::vector<std::int64_t> pos = {0, 3, 4};
  rerotate(from, to, token_major(k.data(), 1, 3, 1, hd), positions_view{pos.data(), 0});
  for (std::ptrdiff_t c = 0; c < 2 * hd; ++c) CHECK(k[static_cast<std::size_t>(c)] == before[static_cast<std::size_t>(c)]);
  const std::size_t t2 = static_cast<std::size_t>(2 * hd);
  CHECK(k[t2 + 0] == before[t2 + 0]);     // pair 0: lambda 1 in both sets
  CHECK(k[t2 + 16] == before[t2 + 16]);
  CHECK(k[t2 + 5] != before[t2 + 5]);     // pair 5 differs at p = 4 >= n_hat
}

TEST_CASE("re-rotation rejects bad arguments before touching memory", "[rerotate]") {
  const rope_config cfg = load("phi-3.5-mini-instruct.json");
  const rope_frequencies from(cfg, {0}), to(cfg, {131072});
  std::vector<float> k(96 * 4, 1.0f);
  std::vector<std::int64_t> pos = {0, 1, -5, 3};
  auto v = token_major(k.data(), 1, 4, 1, 96);
  auto expect = [&](auto&& fn, const std::string& what) {
    try {
      fn();
      FAIL("no error for " << what);
    } catch (const longrope::error& e) {
      CHECK(e.id() == "longrope.argument");
      CHECK_THAT(e.what(), Catch::Contains(what));
    }
  };
  expect([&] { rerotate(from, to, v, positions_view{pos.data(), 0}); }, "position -5");
  for (float x : k) REQUIRE(x == 1.0f);  // untouched
  expect([&] { rerotate(from, to, v, positions_view{nullptr, 0}); }, "null positions");
  expect([&] { rerotate(from, to, v, positions_view{pos.data(), 0}, token_range{0, 5}); }, "token range");
  auto bad = v;
  bad.head_dim = 64;
  expect([&] { rerotate(from, to, bad, positions_view{pos.data(), 0}); }, "head_dim");
  rope_config other = cfg;
  other.layout = pair_layout::interleaved;
  const rope_frequencies fo(other, {131072});
  expect([&] { rerotate(from, fo, v, positions_view{pos.data(), 0}); }, "layout");
  rope_config small;
  small.head_dim = 64;
  expect([&] { rerotate(from, rope_frequencies(small), v, positions_view{pos.data(), 0}); }, "geometry");
  // An empty range is fine, even with null positions.
  rerotate(from, to, v, positions_view{nullptr, 0}, token_range{2, 2});
}
