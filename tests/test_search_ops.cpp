// The search's building blocks: random numbers, the space, the operators
// (property tests: no output ever leaves the grid or breaks the constraint),
// and the PI / NTK / YaRN seeds against independent formulas.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "catch.hpp"

#include <longrope/search.hpp>

using namespace longrope;

namespace {

search_target make_target(int pairs, double scale, std::int64_t l0 = 256, double base = 10000.0) {
  search_target t;
  t.rope.head_dim = 2 * pairs;
  t.rope.base = base;
  t.original_length = l0;
  t.scale = scale;
  return t;
}

// A uniformly random valid candidate: sorted random indices in [lo, hi].
template <class G>
candidate random_valid(const search_space& sp, G& g) {
  candidate c;
  for (int i = 0; i < sp.free_pairs(); ++i) {
    c.lambda_index.push_back(sp.min_index() +
                             static_cast<int>(uniform_index(g, static_cast<std::uint64_t>(sp.max_index() - sp.min_index() + 1))));
  }
  std::sort(c.lambda_index.begin(), c.lambda_index.end());
  c.n_hat_index = static_cast<int>(uniform_index(g, sp.n_hat_values().size()));
  return c;
}

// The independent check of "on the grid and monotone", on the factor values.
bool point_ok(const search_space& sp, const search_point& p) {
  const auto& cfg = sp.config();
  if (static_cast<int>(p.factors.size()) != cfg.pairs) return false;
  for (int i = 0; i < cfg.pairs; ++i) {
    const double f = p.factors[static_cast<std::size_t>(i)];
    if (i > 0 && f < p.factors[static_cast<std::size_t>(i - 1)]) return false;
    if (i < sp.frozen_pairs()) {
      if (f != cfg.frozen_factors[static_cast<std::size_t>(i)]) return false;
      continue;
    }
    if (f < cfg.lambda_min - 1e-12 || f > cfg.lambda_max + 1e-9) return false;
    const double k = (f - cfg.lambda_min) / cfg.step;
    if (std::fabs(k - std::round(k)) > 1e-6) return false;
  }
  return std::find(sp.n_hat_values().begin(), sp.n_hat_values().end(), p.n_hat) != sp.n_hat_values().end();
}

}  // namespace

TEST_CASE("search_rng matches the xoshiro256** reference (scripts/reference/search_rng.py)") {
  search_rng g0(0);
  CHECK(g0() == 0x99ec5f36cb75f2b4ULL);
  CHECK(g0() == 0xbf6e1f784956452aULL);
  CHECK(g0() == 0x1a5f849d4933e6e0ULL);
  CHECK(g0() == 0x6aa594f1262d2d2cULL);
  search_rng g42(42);
  CHECK(g42() == 0x15780b2e0c2ec716ULL);
  CHECK(g42() == 0x6104d9866d113a7eULL);
  search_rng g7(7);
  const std::vector<std::uint64_t> want = {0, 0, 2, 2, 4, 2, 5, 4, 7, 8};
  for (std::uint64_t n = 1; n <= 10; ++n) CHECK(uniform_index(g7, n) == want[n - 1]);

  // State round trip; the all-zero state is refused.
  search_rng a(5), b(9);
  a();
  b.set_state(a.state());
  CHECK(a == b);
  CHECK(a() == b());
  CHECK_THROWS_WITH(b.set_state({0, 0, 0, 0}), Catch::Contains("longrope.search"));
}

TEST_CASE("uniform_index: in range and unbiased for engines of any width") {
  auto check = [](auto& g, std::uint64_t n, int draws) {
    std::vector<int> counts(n, 0);
    for (int i = 0; i < draws; ++i) {
      const std::uint64_t x = uniform_index(g, n);
      REQUIRE(x < n);
      ++counts[x];
    }
    // Each bucket within 5 standard deviations of draws / n.
    const double mean = static_cast<double>(draws) / static_cast<double>(n);
    const double sd = std::sqrt(mean * (1.0 - 1.0 / static_cast<double>(n)));
    for (int c : counts) CHECK(std::fabs(c - mean) < 5.0 * sd);
  };
  search_rng x(1);
  std::mt19937 m32(2);       // 32-bit outputs: two draws per 64 bits
  std::minstd_rand lcg(3);   // range 2^31 - 2: not a power of two, rejection path
  std::mt19937_64 m64(4);
  for (std::uint64_t n : {2ULL, 3ULL, 7ULL, 10ULL}) {
    check(x, n, 20000);
    check(m32, n, 20000);
    check(lcg, n, 20000);
    check(m64, n, 20000);
  }
  search_rng y(11);
  for (int i = 0; i < 1000; ++i) {
    const double u = uniform_unit(y);
    REQUIRE(u >= 0.0);
    REQUIRE(u < 1.0);
  }
  CHECK_FALSE(bernoulli(y, 0.0));
  CHECK(bernoulli(y, 1.0));
}

TEST_CASE("search_space: grid values, bounds, defaults and errors") {
  const auto t = make_target(8, 4.0);
  const auto cfg = default_space_config(t);
  CHECK(cfg.pairs == 8);
  CHECK(cfg.lambda_min == 1.0);
  CHECK(cfg.lambda_max == 5.0);
  CHECK(cfg.step == 0.01);
  CHECK(cfg.n_hat_values == std::vector<std::int64_t>{0, 1, 2, 4, 8, 12, 16, 20, 24, 28, 32, 64, 128, 256});
  const search_space sp(cfg);
  CHECK(sp.grid_size() == 401);
  CHECK(sp.value(0) == 1.0);
  CHECK(sp.value(37) == 1.37);   // the double nearest the decimal
  CHECK(sp.value(400) == 5.0);
  CHECK(sp.nearest_index(1.374) == 37);
  CHECK(sp.nearest_index(-3.0) == 0);
  CHECK(sp.nearest_index(99.0) == 400);
  CHECK(sp.nearest_index(std::nan("")) == 0);
  CHECK(sp.nearest_n_hat_index(9) == 4);     // 8
  CHECK(sp.nearest_n_hat_index(10) == 4);    // tie 8 / 12: the smaller
  CHECK(sp.nearest_n_hat_index(1000) == 13); // 256

  auto bad = [&](auto edit, const char* field) {
    search_space_config c = cfg;
    edit(c);
    CHECK_THROWS_WITH(search_space(c), Catch::Contains("longrope.search") && Catch::Contains(field));
  };
  bad([](search_space_config& c) { c.pairs = 0; }, "space.pairs");
  bad([](search_space_config& c) { c.lambda_min = 0.0; }, "space.lambda_min");
  bad([](search_space_config& c) { c.lambda_max = 0.5; }, "space.lambda_max");
  bad([](search_space_config& c) { c.step = -0.01; }, "space.step");
  bad([](search_space_config& c) { c.step = 1e-12; }, "space.step");
  bad([](search_space_config& c) { c.frozen_factors.assign(8, 1.0); }, "space.frozen_factors");
  bad([](search_space_config& c) { c.frozen_factors = {1.2, 1.1}; }, "space.frozen_factors[1]");
  bad([](search_space_config& c) { c.frozen_factors = {9.0}; }, "space.frozen_factors");
  bad([](search_space_config& c) { c.n_hat_values = {0, 4, 4}; }, "space.n_hat_values[2]");
  bad([](search_space_config& c) { c.n_hat_values = {}; }, "space.n_hat_values");
  bad([](search_space_config& c) { c.n_hat_values = {-1, 2}; }, "space.n_hat_values[0]");

  // search_n_hat = false fixes n_hat at 0.
  search_space_config off = cfg;
  off.search_n_hat = false;
  CHECK(search_space(off).n_hat_values() == std::vector<std::int64_t>{0});

  // A non-decimal step still produces a consistent grid.
  search_space_config odd = cfg;
  odd.step = 0.3;
  const search_space so(odd);
  CHECK(so.grid_size() == 14);  // 1.0 .. 4.9
  CHECK(so.value(13) == Approx(4.9));
}

TEST_CASE("search_space: is_valid, check and point") {
  const search_space sp(default_space_config(make_target(4, 2.0)));
  candidate c{{0, 10, 10, 150}, 3};
  CHECK(sp.is_valid(c));
  const auto p = sp.point(c);
  CHECK(p.factors == std::vector<double>{1.0, 1.1, 1.1, 2.5});
  CHECK(p.n_hat == 4);
  CHECK_FALSE(sp.is_valid(candidate{{0, 10, 9, 150}, 3}));
  CHECK_FALSE(sp.is_valid(candidate{{0, 10, 10, 151}, 3}));
  CHECK_FALSE(sp.is_valid(candidate{{-1, 10, 10, 150}, 3}));
  CHECK_FALSE(sp.is_valid(candidate{{0, 10, 10}, 3}));
  CHECK_FALSE(sp.is_valid(candidate{{0, 10, 10, 150}, 14}));
  CHECK_THROWS_WITH(sp.check(candidate{{0, 10, 9, 150}, 3}, "x"), Catch::Contains("lambda_index[2]"));
  CHECK_THROWS_WITH(sp.check(candidate{{0, 10, 10, 150}, -1}, "x"), Catch::Contains("n_hat_index"));
}

TEST_CASE("repair and snap: valid output, identity on valid input, isotonic pooling") {
  const search_space sp(default_space_config(make_target(6, 2.0)));
  // A decreasing run pools to its rounded mean: (40 + 20) / 2 = 30.
  candidate c{{0, 40, 20, 60, 200, -5}, 99};
  repair(sp, c);
  CHECK(sp.is_valid(c));
  // Clamped to [0, 150] first: {0, 40, 20, 60, 150, 0}; then (40, 20) pool to
  // 30 and (150, 0) to 75.
  CHECK(c.lambda_index == std::vector<int>{0, 30, 30, 60, 75, 75});
  CHECK(c.n_hat_index == 13);

  search_rng g(3);
  for (int trial = 0; trial < 500; ++trial) {
    candidate v = random_valid(sp, g);
    candidate w = v;
    repair(sp, w);
    REQUIRE(w == v);
    // Arbitrary garbage, including wrong sizes, always ends valid.
    candidate junk;
    junk.lambda_index.resize(static_cast<std::size_t>(uniform_index(g, 10)));
    for (int& k : junk.lambda_index) k = static_cast<int>(uniform_index(g, 400)) - 100;
    junk.n_hat_index = static_cast<int>(uniform_index(g, 40)) - 20;
    repair(sp, junk);
    REQUIRE(sp.is_valid(junk));
    candidate again = junk;
    repair(sp, again);
    REQUIRE(again == junk);  // idempotent
  }

  // snap: nearest grid value, then the constraint; n_hat to the nearest value.
  const auto s1 = snap(sp, {1.004, 1.006, 1.5, 1.4, 3.0, 2.5}, 5);
  CHECK(s1.lambda_index == std::vector<int>{0, 1, 45, 45, 150, 150});
  CHECK(s1.n_hat_index == 3);  // n_hat 4: |5 - 4| < |5 - 8|
  CHECK_THROWS_WITH(snap(sp, {1.0, 1.0}, 0), Catch::Contains("longrope.argument") && Catch::Contains("expected 6"));
  CHECK_THROWS_WITH(snap(sp, {1.0, 1.0, INFINITY, 1.0, 1.0, 1.0}, 0), Catch::Contains("factors[2]"));
}

TEST_CASE("operators never leave the grid or break the constraint (property test, many seeds)") {
  const auto t = make_target(12, 3.0);
  std::vector<search_space> spaces;
  spaces.emplace_back(default_space_config(t));
  {
    auto c = default_space_config(t);  // LongRoPE2: frozen NTK below pair 5, search in [s, 2s]
    c.frozen_factors = ntk_frozen_factors(t, 5);
    c.lambda_min = 3.0;
    c.lambda_max = 6.0;
    spaces.emplace_back(c);
  }
  {
    auto c = default_space_config(t);  // frozen factors above lambda_min: min_index > 0
    c.frozen_factors = {1.0, 1.5, 1.777};
    c.search_n_hat = false;
    spaces.emplace_back(c);
  }
  {
    auto c = default_space_config(t);  // a tiny grid: many collisions at the bounds
    c.lambda_max = 1.03;
    c.n_hat_values = {0, 64};
    spaces.emplace_back(c);
  }
  std::int64_t checked = 0;
  for (const auto& sp : spaces) {
    if (sp.frozen_pairs() == 3) CHECK(sp.value(sp.min_index()) == 1.78);
    for (std::uint64_t seed = 0; seed < 60; ++seed) {
      search_rng g(seed);
      std::mt19937 m(static_cast<unsigned>(seed));  // the operators take any engine
      for (int trial = 0; trial < 40; ++trial) {
        const candidate a = random_valid(sp, g);
        const candidate b = random_valid(sp, g);
        const double p = uniform_unit(g);
        const int radius = static_cast<int>(uniform_index(g, 4)) * 3;
        const auto mode = (trial % 2) != 0 ? mutation_mode::push : mutation_mode::bounded;
        const candidate m1 = mutate(sp, a, p, g, radius, mode);
        REQUIRE(sp.is_valid(m1));
        REQUIRE(point_ok(sp, sp.point(m1)));
        if (radius > 0 && mode == mutation_mode::bounded) {  // push may drag neighbours further
          for (std::size_t i = 0; i < a.lambda_index.size(); ++i) {
            REQUIRE(std::abs(m1.lambda_index[i] - a.lambda_index[i]) <= radius);
          }
        }
        candidate m2 = mutate(sp, b, p, m, 0, mode);
        mutate_n_hat(sp, m2, p, m);
        REQUIRE(sp.is_valid(m2));
        const auto x1 = crossover(sp, a, b, g, crossover_policy::repair);
        REQUIRE(x1.has_value());
        REQUIRE(sp.is_valid(*x1));
        REQUIRE(point_ok(sp, sp.point(*x1)));
        const auto x2 = crossover(sp, m1, m2, m, crossover_policy::reject);
        if (x2) REQUIRE(sp.is_valid(*x2));
        // A crossover child takes every pair (and n_hat) from a parent unless it was repaired.
        const auto x3 = crossover(sp, a, b, g, crossover_policy::reject);
        if (x3) {
          for (std::size_t i = 0; i < a.lambda_index.size(); ++i) {
            REQUIRE((x3->lambda_index[i] == a.lambda_index[i] || x3->lambda_index[i] == b.lambda_index[i]));
          }
          REQUIRE((x3->n_hat_index == a.n_hat_index || x3->n_hat_index == b.n_hat_index));
        }
        checked += 5;
      }
    }
  }
  CHECK(checked == 4 * 60 * 40 * 5);
}

TEST_CASE("mutation: p = 0 keeps the parent, p = 1 moves inside the neighbours' range, n_hat moves to another value") {
  const search_space sp(default_space_config(make_target(8, 4.0)));
  search_rng g(1);
  const candidate a = random_valid(sp, g);
  CHECK(mutate(sp, a, 0.0, g) == a);
  CHECK(mutate(sp, a, 0.0, g, 5, mutation_mode::push) == a);
  // Push mode moves a plateau as a block: from {10, 50, 50, 50, 90, ...}, a
  // single resampled pair can drag its equal neighbours along.
  const candidate plateau{{10, 50, 50, 50, 90, 100, 110, 120}, 0};
  bool block_moved = false;
  for (int i = 0; i < 400 && !block_moved; ++i) {
    const auto m = mutate(sp, plateau, 0.15, g, 20, mutation_mode::push);
    REQUIRE(sp.is_valid(m));
    block_moved = m.lambda_index[1] == m.lambda_index[3] && m.lambda_index[1] != 50;
  }
  CHECK(block_moved);
  // From a flat vector (the PI seed), a full resample can only move the ends
  // first; the sweep lets the whole vector spread out over many mutations.
  candidate flat{std::vector<int>(8, 300), 0};
  bool spread = false;
  for (int i = 0; i < 50 && !spread; ++i) {
    const auto m = mutate(sp, flat, 1.0, g);
    REQUIRE(sp.is_valid(m));
    spread = m.lambda_index.front() < 300 && m.lambda_index.back() > 300;
  }
  CHECK(spread);
  candidate c = a;
  for (int i = 0; i < 100; ++i) {
    const int before = c.n_hat_index;
    mutate_n_hat(sp, c, 1.0, g);
    REQUIRE(c.n_hat_index != before);
    REQUIRE(sp.is_valid(c));
  }
  // Invalid parents are rejected, not propagated.
  CHECK_THROWS_WITH(mutate(sp, candidate{{5, 4, 6, 7, 8, 9, 10, 11}, 0}, 0.3, g),
                    Catch::Contains("longrope.argument") && Catch::Contains("mutate: parent"));
  CHECK_THROWS_WITH(crossover(sp, a, candidate{{1}, 0}, g), Catch::Contains("crossover: parent b"));
}

TEST_CASE("seeds come from the library's PI / NTK / YaRN formulas, snapped and repaired") {
  const int pairs = 16;
  const double s = 4.0;
  const auto t = make_target(pairs, s, 512, 10000.0);
  const double d = 2.0 * pairs;
  // Independent formulas (LONGROPE.md section 2).
  std::vector<double> pi(pairs, s), ntk(pairs), yarn(pairs);
  const double pi_c = 3.14159265358979323846;
  auto corr = [&](double r) { return d * std::log(512.0 / (2.0 * pi_c * r)) / (2.0 * std::log(10000.0)); };
  const double low = std::max(0.0, std::floor(corr(32.0)));
  const double high = std::min(d - 1.0, std::ceil(corr(1.0)));
  for (int i = 0; i < pairs; ++i) {
    ntk[static_cast<std::size_t>(i)] = std::pow(std::pow(s, d / (d - 2.0)), 2.0 * i / d);
    const double ramp = std::clamp((i - low) / (high - low), 0.0, 1.0);
    // inv = (theta / s) ramp + theta (1 - ramp)  =>  lambda = 1 / (ramp / s + 1 - ramp)
    yarn[static_cast<std::size_t>(i)] = 1.0 / (ramp / s + 1.0 - ramp);
  }
  const auto bl_pi = baseline_factors(t, rope_type::linear);
  const auto bl_ntk = baseline_factors(t, rope_type::ntk);
  const auto bl_yarn = baseline_factors(t, rope_type::yarn);
  for (int i = 0; i < pairs; ++i) {
    const auto k = static_cast<std::size_t>(i);
    CHECK(bl_pi[k] == Approx(pi[k]).epsilon(1e-12));
    CHECK(bl_ntk[k] == Approx(ntk[k]).epsilon(1e-12));
    CHECK(bl_yarn[k] == Approx(yarn[k]).epsilon(1e-12));
  }
  CHECK(bl_ntk.back() == Approx(s).epsilon(1e-12));
  CHECK_THROWS_WITH(baseline_factors(t, rope_type::llama3), Catch::Contains("longrope.argument"));

  const search_space sp(default_space_config(t));
  search_seeds seeds;
  seeds.user.push_back({std::vector<double>(pairs, 2.0), 9});
  const auto c = make_seeds(sp, t, seeds);
  REQUIRE(c.size() == 4);
  auto expect = [&](const candidate& got, const std::vector<double>& f) {
    for (int i = 0; i < pairs; ++i) {
      const auto k = static_cast<std::size_t>(i);
      CHECK(std::fabs(sp.value(got.lambda_index[k]) - f[k]) <= 0.005 + 1e-12);  // nearest grid value
    }
  };
  expect(c[0], pi);
  expect(c[1], ntk);
  expect(c[2], yarn);
  CHECK(c[3].lambda_index == std::vector<int>(pairs, 100));
  CHECK(sp.n_hat_values()[static_cast<std::size_t>(c[3].n_hat_index)] == 8);
  for (const auto& x : c) CHECK(sp.is_valid(x));

  // Duplicates collapse; no seeds is an error.
  search_seeds dup;
  dup.ntk = dup.yarn = false;
  dup.user.push_back({bl_pi, 0});
  CHECK(make_seeds(sp, t, dup).size() == 1);
  search_seeds none;
  none.pi = none.ntk = none.yarn = false;
  CHECK_THROWS_WITH(make_seeds(sp, t, none), Catch::Contains("no seeds"));

  // LongRoPE2 frozen pairs are exactly the NTK factors.
  const auto frozen = ntk_frozen_factors(t, 6);
  REQUIRE(frozen.size() == 6);
  for (std::size_t i = 0; i < 6; ++i) CHECK(frozen[i] == bl_ntk[i]);
  CHECK_THROWS(ntk_frozen_factors(t, pairs));
}

TEST_CASE("search_options and search_target validation name the field") {
  auto bad = [](auto edit, const char* field) {
    search_options o;
    edit(o);
    CHECK_THROWS_WITH(o.validate(), Catch::Contains("longrope.search") && Catch::Contains(field));
  };
  bad([](search_options& o) { o.population = 0; }, "options.population");
  bad([](search_options& o) { o.top_k = 0; }, "options.top_k");
  bad([](search_options& o) { o.mutations = -1; }, "options.mutations");
  bad([](search_options& o) { o.mutation_probability = 1.5; }, "options.mutation_probability");
  bad([](search_options& o) { o.n_hat_probability = std::nan(""); }, "options.n_hat_probability");
  bad([](search_options& o) { o.mutation_radius = -1; }, "options.mutation_radius");
  bad([](search_options& o) { o.tolerance = -1.0; }, "options.tolerance");
  bad([](search_options& o) { o.max_evaluations = -1; }, "options.max_evaluations");
  bad([](search_options& o) { o.max_seconds = std::nan(""); }, "options.max_seconds");
  bad([](search_options& o) { o.threads = -2; }, "options.threads");
  CHECK_NOTHROW(search_options{}.validate());

  auto t = make_target(4, 2.0);
  t.original_length = 0;
  CHECK_THROWS_WITH(default_space_config(t), Catch::Contains("target.original_length"));
  t = make_target(4, 0.0);
  CHECK_THROWS_WITH(default_space_config(t), Catch::Contains("target.scale"));
}
