// The evolutionary driver: convergence on synthetic landscapes with a known
// monotone optimum, no duplicate evaluation, determinism (threads, ask/tell,
// checkpoint/resume through JSON), stopping rules, progressive stages, export.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "catch.hpp"

#include <longrope/json.hpp>
#include <longrope/search.hpp>
#include <longrope/search_json.hpp>

using namespace longrope;

namespace {

search_target make_target(int pairs, double scale, std::int64_t l0 = 256) {
  search_target t;
  t.rope.head_dim = 2 * pairs;
  t.original_length = l0;
  t.scale = scale;
  return t;
}

// Separable quadratic bowl around `target` (factor values) with an n_hat term.
// Its minimum over the monotone grid is the isotonic (pool-adjacent-violators)
// projection of target, computed here in double independently of search.hpp.
struct bowl {
  std::vector<double> target;
  std::int64_t n_hat_target = 0;
  double n_hat_weight = 0.0;

  double operator()(const search_point& p) const {
    double a = 0.0;
    for (std::size_t i = 0; i < target.size(); ++i) a += (p.factors[i] - target[i]) * (p.factors[i] - target[i]);
    const double dn = static_cast<double>(p.n_hat - n_hat_target);
    return a + n_hat_weight * dn * dn;
  }
};

std::vector<double> isotonic(const std::vector<double>& y) {
  std::vector<std::pair<double, int>> blocks;  // (mean, count)
  for (double v : y) {
    blocks.push_back({v, 1});
    while (blocks.size() >= 2 && blocks[blocks.size() - 2].first > blocks.back().first) {
      const auto b = blocks.back();
      blocks.pop_back();
      auto& a = blocks.back();
      a.first = (a.first * a.second + b.first * b.second) / (a.second + b.second);
      a.second += b.second;
    }
  }
  std::vector<double> out;
  for (const auto& b : blocks) out.insert(out.end(), static_cast<std::size_t>(b.second), b.first);
  return out;
}

double max_gap(const std::vector<double>& a, const std::vector<double>& b) {
  double m = 0.0;
  for (std::size_t i = 0; i < a.size(); ++i) m = std::max(m, std::fabs(a[i] - b[i]));
  return m;
}

search_options small_options(std::uint64_t seed) {
  search_options o;
  o.population = 16;
  o.mutations = 6;
  o.crossovers = 6;
  o.top_k = 8;
  o.iterations = 12;
  o.seed = seed;
  return o;
}

void require_same(const search_result& a, const search_result& b) {
  REQUIRE(a.best_candidate == b.best_candidate);
  REQUIRE(a.best_score == b.best_score);
  REQUIRE(a.best.factors == b.best.factors);
  REQUIRE(a.best.n_hat == b.best.n_hat);
  REQUIRE(a.evaluations == b.evaluations);
  REQUIRE(a.iterations == b.iterations);
  REQUIRE(a.reason == b.reason);
  REQUIRE(a.population.size() == b.population.size());
  for (std::size_t i = 0; i < a.population.size(); ++i) {
    REQUIRE(a.population[i].c == b.population[i].c);
    REQUIRE(a.population[i].score == b.population[i].score);
  }
}

}  // namespace

TEST_CASE("synthetic landscapes: the search reaches the known optimum within one grid step") {
  SECTION("paper operators and defaults, 4 pairs, s = 2, n_hat fixed") {
    // Optimum on the grid, monotone: 1.00, 1.50, 2.00, 2.50 (the top of [1, 1.25 s]).
    const auto t = make_target(4, 2.0);
    auto cfg = default_space_config(t);
    cfg.search_n_hat = false;
    const search_space sp(cfg);
    const bowl f{{1.0, 1.5, 2.0, 2.5}};
    for (std::uint64_t seed : {1ULL, 2ULL, 3ULL, 4ULL, 5ULL}) {
      search_options o;  // P 64, N1 = N2 = 16, k 32, p 0.3
      o.iterations = 60;
      o.seed = seed;
      evolutionary_search s(sp, o, t);
      const auto r = s.run_parallel(f);
      INFO("seed " << seed << " best " << r.best_score << " after " << r.evaluations << " evaluations");
      CHECK(r.evaluations <= 64 + 60 * 32);
      CHECK(max_gap(r.best.factors, f.target) <= 0.01 + 1e-9);
    }
  }
  SECTION("8 pairs, s = 4, 14 n_hat values, local mutation radius 10") {
    const auto t = make_target(8, 4.0);
    const search_space sp(default_space_config(t));
    bowl f;
    for (int i = 0; i < 8; ++i) f.target.push_back(std::round((1.0 + 3.0 * i / 7.0) * 100.0) / 100.0);
    f.n_hat_target = 8;
    f.n_hat_weight = 1e-4;
    for (std::uint64_t seed : {1ULL, 2ULL, 3ULL}) {
      search_options o;
      o.iterations = 100;
      o.mutation_radius = 10;
      o.seed = seed;
      evolutionary_search s(sp, o, t);
      const auto r = s.run_parallel(f);
      INFO("seed " << seed << " best " << r.best_score << " after " << r.evaluations << " evaluations");
      CHECK(r.evaluations <= 64 + 100 * 32);
      CHECK(max_gap(r.best.factors, f.target) <= 0.01 + 1e-9);
      CHECK(r.best.n_hat == 8);
    }
  }
  SECTION("the constraint is active: the optimum is the isotonic projection of a non-monotone target (push mutation)") {
    const auto t = make_target(8, 2.0);
    auto cfg = default_space_config(t);
    cfg.search_n_hat = false;
    const search_space sp(cfg);
    const bowl f{{1.0, 1.3, 1.1, 1.5, 1.7, 1.6, 2.0, 2.2}};
    const auto opt = isotonic(f.target);  // 1.0 1.2 1.2 1.5 1.65 1.65 2.0 2.2: on the grid
    for (std::uint64_t seed : {1ULL, 2ULL, 3ULL}) {
      search_options o;
      o.iterations = 80;
      o.mutation_radius = 10;
      o.mutation = mutation_mode::push;  // plateaus move as blocks (bounded mode stalls on them)
      o.seed = seed;
      evolutionary_search s(sp, o, t);
      const auto r = s.run_parallel(f);
      INFO("seed " << seed << " best " << r.best_score << " after " << r.evaluations << " evaluations");
      CHECK(max_gap(r.best.factors, opt) <= 0.01 + 1e-9);
    }
  }
}

TEST_CASE("every evaluated candidate is valid and evaluated exactly once") {
  const auto t = make_target(6, 3.0);
  auto cfg = default_space_config(t);
  cfg.lambda_max = 1.2;  // a small grid makes collisions (and so the cache) matter
  cfg.n_hat_values = {0, 4};
  const search_space sp(cfg);
  for (std::uint64_t seed = 0; seed < 10; ++seed) {
    std::set<std::pair<std::vector<double>, std::int64_t>> seen;
    std::int64_t calls = 0;
    search_options o = small_options(seed);
    o.iterations = 30;
    evolutionary_search s(sp, o, t);
    const auto r = s.run([&](const std::vector<search_point>& batch) {
      std::vector<double> out;
      for (const auto& p : batch) {
        ++calls;
        REQUIRE(seen.insert({p.factors, p.n_hat}).second);  // never twice
        for (std::size_t i = 0; i < p.factors.size(); ++i) {
          REQUIRE(p.factors[i] >= 1.0);
          REQUIRE(p.factors[i] <= 1.2);
          if (i > 0) REQUIRE(p.factors[i] >= p.factors[i - 1]);
        }
        out.push_back(std::sin(p.factors[0] * 7.0) + p.factors.back() + 0.01 * static_cast<double>(p.n_hat));
      }
      return out;
    });
    CHECK(r.evaluations == calls);
    CHECK(static_cast<std::int64_t>(s.cache().size()) == calls);
    for (const auto& e : s.cache()) CHECK(sp.is_valid(e.first));
    // The ranking is a total order: sorted by (score, candidate).
    for (std::size_t i = 1; i < r.population.size(); ++i) {
      const auto& a = r.population[i - 1];
      const auto& b = r.population[i];
      CHECK((a.score < b.score || (a.score == b.score && a.c < b.c)));
    }
  }
}

TEST_CASE("same result with 1, 2 and 4 threads, whatever the order evaluations finish in") {
  const auto t = make_target(8, 4.0);
  const search_space sp(default_space_config(t));
  const bowl f{{1.0, 1.2, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0}, 12, 1e-4};
  for (std::uint64_t seed : {7ULL, 8ULL}) {
    std::vector<search_result> results;
    for (int threads : {1, 2, 4}) {
      search_options o = small_options(seed);
      o.threads = threads;
      std::atomic<int> n{0};
      evolutionary_search s(sp, o, t);
      results.push_back(s.run_parallel([&](const search_point& p) {
        // Uneven delays shuffle completion order across threads.
        if (threads > 1 && (n++ % 3) == 0) std::this_thread::sleep_for(std::chrono::microseconds(200));
        return f(p);
      }));
    }
    require_same(results[0], results[1]);
    require_same(results[0], results[2]);
  }
}

TEST_CASE("ask/tell gives the same result as the built-in loop, also through JSON") {
  const auto t = make_target(8, 4.0);
  const search_space sp(default_space_config(t));
  const bowl f{{1.0, 1.2, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0}, 12, 1e-4};
  const auto o = small_options(3);
  evolutionary_search a(sp, o, t);
  const auto ra = a.run_parallel(f);

  // "Another process": candidates leave as JSON, scores come back as JSON, in
  // reverse order of evaluation.
  evolutionary_search b(sp, o, t);
  int generations = 0;
  while (!b.done()) {
    REQUIRE(&b.ask() == &b.ask());  // asking twice hands out the same generation
    nlohmann::json request = nlohmann::json::array();
    for (const auto& p : b.ask_points()) request.push_back({{"factors", p.factors}, {"n_hat", p.n_hat}});
    const auto wire = nlohmann::json::parse(request.dump());
    std::vector<double> scores(wire.size());
    for (std::size_t i = wire.size(); i-- > 0;) {
      search_point p{wire[i]["factors"].get<std::vector<double>>(), wire[i]["n_hat"].get<std::int64_t>()};
      scores[i] = f(p);
    }
    b.tell(nlohmann::json::parse(nlohmann::json(scores).dump()).get<std::vector<double>>());
    ++generations;
  }
  require_same(ra, b.result());
  CHECK(generations == o.iterations + 1);
  CHECK(b.ask().empty());
  CHECK_THROWS_WITH(b.tell({}), Catch::Contains("done"));
}

TEST_CASE("checkpoint to JSON mid-run and resume: bit-identical to the uninterrupted run") {
  const auto t = make_target(8, 4.0);
  const search_space sp(default_space_config(t));
  const bowl f{{1.0, 1.2, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0}, 12, 1e-4};
  for (std::uint64_t seed : {11ULL, 12ULL}) {
    search_options o = small_options(seed);
    o.patience = 6;
    o.tolerance = 1e-6;
    if (seed == 12) {  // every option must survive the checkpoint
      o.mutation_radius = 7;
      o.mutation = mutation_mode::push;
      o.crossover = crossover_policy::reject;
      o.n_hat_probability = 0.55;
      o.max_attempts = 9;
    }
    evolutionary_search full(sp, o, t);
    const auto rf = full.run_parallel(f);

    for (int stop_at : {0, 5}) {
      // Interrupt through the callback after generation `stop_at`.
      std::string saved;
      evolutionary_search first(sp, o, t);
      first.run_parallel(f, [&](const search_progress& p) {
        if (p.iteration < stop_at) return true;
        saved = to_json(first.checkpoint()).dump();
        return false;
      });
      REQUIRE(first.status() == stop_reason::cancelled);
      REQUIRE(!saved.empty());
      evolutionary_search resumed(search_checkpoint_from_json(nlohmann::json::parse(saved)));
      REQUIRE(!resumed.done());
      const auto rr = resumed.run_parallel(f);
      require_same(rf, rr);
      CHECK(resumed.cache() == full.cache());
    }

    // A checkpoint between ask() and tell() (out-of-process evaluation) resumes too.
    evolutionary_search c(sp, o, t);
    c.tell(evaluate_parallel(f, c.ask_points(), 1));
    c.tell(evaluate_parallel(f, c.ask_points(), 1));
    const auto pending = c.ask();
    const auto path = std::string("test_search_checkpoint_") + std::to_string(seed) + ".json";
    save_checkpoint(c, path);
    auto d = load_checkpoint(path);
    std::remove(path.c_str());
    CHECK(d.ask() == pending);
    require_same(rf, d.run_parallel(f));
  }
}

TEST_CASE("checkpoint JSON: exact round trip and clear errors") {
  const auto t = make_target(4, 2.0);
  const search_space sp(default_space_config(t));
  evolutionary_search s(sp, small_options(1), t);
  std::vector<double> scores(s.ask().size(), 1.0);
  scores[0] = std::numeric_limits<double>::infinity();
  scores[1] = std::nan("");  // counts as +inf
  scores[2] = 0.1 + 0.2;      // not a short decimal: must survive the text round trip
  s.tell(scores);
  const auto j = to_json(s.checkpoint());
  const auto back = search_checkpoint_from_json(nlohmann::json::parse(j.dump()));
  CHECK(to_json(back) == j);
  CHECK(back.rng == s.checkpoint().rng);
  CHECK(back.population.front().score == 0.1 + 0.2);
  CHECK(std::isinf(back.population.back().score));

  // Every option and space field survives the round trip.
  search_options o;
  o.population = 7;
  o.mutations = 3;
  o.crossovers = 2;
  o.top_k = 5;
  o.iterations = 9;
  o.mutation_probability = 0.21;
  o.mutation_radius = 4;
  o.mutation = mutation_mode::push;
  o.n_hat_probability = 0.11;
  o.crossover = crossover_policy::reject;
  o.max_attempts = 13;
  o.seed = 0xfedcba9876543210ULL;
  o.patience = 3;
  o.tolerance = 0.125;
  o.max_evaluations = 1000;
  o.max_seconds = 12.5;
  o.threads = 3;
  auto sc = default_space_config(make_target(6, 3.0));
  sc.frozen_factors = {1.0, 1.01};
  sc.n_hat_values = {0, 3, 9};
  sc.search_n_hat = true;
  const evolutionary_search q(search_space(sc), o, make_target(6, 3.0));
  const auto cq = search_checkpoint_from_json(nlohmann::json::parse(to_json(q.checkpoint()).dump()));
  const auto& r = cq.options;
  CHECK((r.population == 7 && r.mutations == 3 && r.crossovers == 2 && r.top_k == 5 && r.iterations == 9));
  CHECK((r.mutation_probability == 0.21 && r.mutation_radius == 4 && r.mutation == mutation_mode::push));
  CHECK((r.n_hat_probability == 0.11 && r.crossover == crossover_policy::reject && r.max_attempts == 13));
  CHECK((r.seed == 0xfedcba9876543210ULL && r.patience == 3 && r.tolerance == 0.125));
  CHECK((r.max_evaluations == 1000 && r.max_seconds == 12.5 && r.threads == 3));
  CHECK(cq.space.frozen_factors == sc.frozen_factors);
  CHECK(cq.space.n_hat_values == sc.n_hat_values);
  CHECK((cq.space.lambda_max == sc.lambda_max && cq.space.step == sc.step && cq.space.pairs == 6));

  auto broken = [&](auto edit, const char* what) {
    nlohmann::json k = j;
    edit(k);
    CHECK_THROWS_WITH(evolutionary_search(search_checkpoint_from_json(k)), Catch::Contains(what));
  };
  broken([](nlohmann::json& k) { k.erase("rng"); }, "rng: missing");
  broken([](nlohmann::json& k) { k["version"] = 2; }, "unsupported checkpoint version");
  broken([](nlohmann::json& k) { k["format"] = "x"; }, "format");
  broken([](nlohmann::json& k) { k["options"]["population"] = "many"; }, "options.population");
  broken([](nlohmann::json& k) { k["rng"][1] = "12"; }, "rng[1]");
  broken([](nlohmann::json& k) { k["pending"][0][1][0] = 100000; }, "checkpoint.pending");
  broken([](nlohmann::json& k) { k["population"][0][1] = 123.0; }, "score differs from the cache");
  // generation_evaluations must stay within evaluations (checked on load), so the
  // driver's own consistency check (evaluations vs the cache) is what fires.
  broken([](nlohmann::json& k) { k["evaluations"] = 3; k["generation_evaluations"] = 0; }, "checkpoint.evaluations");
  broken([](nlohmann::json& k) { k["status"] = "paused"; }, "unknown status");
  broken([](nlohmann::json& k) { k["options"]["mutation"] = "wild"; }, "options.mutation");
  broken([](nlohmann::json& k) { k["cache"][0][1] = "big"; }, "cache[0][1]");
  CHECK_THROWS_WITH(load_checkpoint("/nonexistent/dir/x.json"), Catch::Contains("longrope.io"));
}

TEST_CASE("stopping rules: iterations, patience, evaluation and time budgets, exhaustion, cancel") {
  const auto t = make_target(6, 3.0);
  const search_space sp(default_space_config(t));
  auto constant = [](const search_point&) { return 1.0; };

  SECTION("early stopping after `patience` generations without improvement") {
    search_options o = small_options(1);
    o.iterations = 40;
    o.patience = 4;
    evolutionary_search s(sp, o, t);
    const auto r = s.run_parallel(constant);
    CHECK(r.reason == stop_reason::converged);
    CHECK(r.iterations == 4);
  }
  SECTION("tolerance: improvements smaller than it do not count") {
    search_options o = small_options(2);
    o.iterations = 40;
    o.patience = 3;
    o.tolerance = 1e3;  // larger than any improvement the bowl allows
    evolutionary_search s(sp, o, t);
    const auto r = s.run_parallel(bowl{{1, 1.5, 2, 2.5, 3, 3.5}});
    CHECK(r.reason == stop_reason::converged);
    CHECK(r.iterations == 3);
  }
  SECTION("evaluation budget: the last generation is cut to fit exactly") {
    search_options o = small_options(3);
    o.max_evaluations = 50;
    evolutionary_search s(sp, o, t);
    const auto r = s.run_parallel(bowl{{1, 1.5, 2, 2.5, 3, 3.5}});
    CHECK(r.reason == stop_reason::evaluation_budget);
    CHECK(r.evaluations == 50);
    search_options tiny = small_options(3);
    tiny.max_evaluations = 5;  // even the initial population is cut
    evolutionary_search s2(sp, tiny, t);
    CHECK(s2.ask().size() == 5);
  }
  SECTION("wall-time budget") {
    search_options o = small_options(4);
    o.iterations = 1000;
    o.max_seconds = 0.05;
    evolutionary_search s(sp, o, t);
    const auto r = s.run_parallel([](const search_point&) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
      return 1.0;
    });
    CHECK(r.reason == stop_reason::time_budget);
    CHECK(r.elapsed_seconds >= 0.05);
    CHECK(r.iterations < 1000);
  }
  SECTION("exhausted: a space smaller than the budget is fully enumerated, nothing twice") {
    auto cfg = default_space_config(make_target(2, 1.0));
    cfg.lambda_max = 1.02;  // 3 grid points, 2 pairs: 6 monotone candidates
    cfg.search_n_hat = false;
    const search_space tiny(cfg);
    search_options o = small_options(5);
    o.iterations = 50;
    evolutionary_search s(tiny, o, make_target(2, 1.0));
    const auto r = s.run_parallel([](const search_point& p) { return p.factors[0] + p.factors[1]; });
    CHECK(r.reason == stop_reason::exhausted);
    CHECK(r.evaluations == 6);
    CHECK(r.best.factors == std::vector<double>{1.0, 1.0});
  }
  SECTION("progress callback: once per generation, consistent numbers, false cancels") {
    search_options o = small_options(6);
    evolutionary_search s(sp, o, t);
    std::vector<search_progress> seen;
    const auto r = s.run_parallel(bowl{{1, 1.5, 2, 2.5, 3, 3.5}}, [&](const search_progress& p) {
      seen.push_back(p);
      return p.iteration < 5;
    });
    CHECK(r.reason == stop_reason::cancelled);
    REQUIRE(seen.size() == 6);
    std::int64_t total = 0;
    for (std::size_t i = 0; i < seen.size(); ++i) {
      CHECK(seen[i].iteration == static_cast<int>(i));
      CHECK(seen[i].iterations == o.iterations);
      total += seen[i].generation_evaluations;
      CHECK(seen[i].evaluations == total);
      CHECK(std::isfinite(seen[i].seconds_left));
      if (i > 0) CHECK(seen[i].best_score <= seen[i - 1].best_score);  // elitist
    }
    CHECK(seen.front().generation_evaluations == o.population);
  }
}

TEST_CASE("fitness errors: wrong batch size, NaN scores, exceptions from worker threads") {
  const auto t = make_target(4, 2.0);
  const search_space sp(default_space_config(t));
  evolutionary_search s(sp, small_options(1), t);
  CHECK_THROWS_WITH(s.tell({1.0}), Catch::Contains("longrope.search") && Catch::Contains("scores"));
  CHECK_THROWS_WITH(s.run([](const std::vector<search_point>&) { return std::vector<double>{}; }),
                    Catch::Contains("tell: expected"));
  CHECK_THROWS_WITH(s.run(batch_fitness{}), Catch::Contains("empty fitness"));

  // NaN ranks last, as +inf.
  evolutionary_search n(sp, small_options(2), t);
  std::vector<double> sc(n.ask().size(), 2.0);
  sc[0] = std::nan("");
  sc[1] = 1.0;
  n.tell(sc);
  CHECK(n.best().score == 1.0);
  CHECK(std::isinf(n.result().population.back().score));

  search_options o = small_options(3);
  o.threads = 2;
  evolutionary_search e(sp, o, t);
  std::atomic<int> calls{0};
  CHECK_THROWS_WITH(e.run_parallel([&](const search_point&) -> double {
    if (++calls == 3) throw std::runtime_error("model crashed");
    return 1.0;
  }),
                    Catch::Contains("model crashed"));
}

TEST_CASE("LongRoPE2 frozen pairs: lower pairs follow NTK exactly, the rest is searched in [s, 2s]") {
  const auto t = make_target(8, 4.0);
  auto cfg = default_space_config(t);
  cfg.frozen_factors = ntk_frozen_factors(t, 3);
  cfg.lambda_min = 4.0;
  cfg.lambda_max = 8.0;
  const search_space sp(cfg);
  const auto ntk = baseline_factors(t, rope_type::ntk);
  evolutionary_search s(sp, small_options(1), t);
  const auto r = s.run_parallel([&](const search_point& p) {
    for (int i = 0; i < 3; ++i) REQUIRE(p.factors[static_cast<std::size_t>(i)] == ntk[static_cast<std::size_t>(i)]);
    for (int i = 3; i < 8; ++i) REQUIRE(p.factors[static_cast<std::size_t>(i)] >= 4.0);
    return std::fabs(p.factors[3] - 5.0) + std::fabs(p.factors[7] - 6.0);
  });
  CHECK(r.best.factors.size() == 8);
  CHECK(r.best.factors[2] == ntk[2]);
}

TEST_CASE("progressive extension: stages, callback between them, short window, rope_scaling export") {
  const std::int64_t l0 = 256;
  auto stage = [&](const char* name, double s, bool short_window) {
    search_stage st;
    st.name = name;
    st.target = make_target(6, s, l0);
    st.space = default_space_config(st.target);
    st.options = small_options(42);
    st.short_window = short_window;
    return st;
  };
  std::vector<search_stage> stages = {stage("8x", 8.0, false), stage("16x", 16.0, false), stage("short", 1.0, true)};
  stages[2].space.lambda_max = 1.2;  // short-window readjustment: a lower cap
  stages[2].seeds.pi = stages[2].seeds.ntk = stages[2].seeds.yarn = false;  // seeded from the long factors only

  // Stage k's landscape wants factors near k-dependent totals.
  const std::vector<std::vector<double>> want = {{1.0, 1.5, 2.5, 4.0, 6.0, 8.0},
                                                 {1.0, 2.0, 4.0, 8.0, 12.0, 16.0},
                                                 {1.0, 1.0, 1.05, 1.1, 1.15, 1.2}};
  std::vector<std::size_t> callbacks;
  std::vector<search_point> first_batch_of_stage2;
  const auto out = run_progressive(
      stages,
      [&](std::size_t k, const search_stage& st, const std::vector<search_point>& batch) {
        CHECK(st.name == stages[k].name);
        if (k == 1 && first_batch_of_stage2.empty()) first_batch_of_stage2 = batch;
        std::vector<double> sc;
        for (const auto& p : batch) sc.push_back(bowl{want[k]}(p));
        return sc;
      },
      [&](std::size_t k, const search_stage&, const search_result& r) {
        callbacks.push_back(k);  // fine-tune here in a real run
        CHECK(r.reason == stop_reason::iterations);
      });
  CHECK(callbacks == std::vector<std::size_t>{0, 1});
  REQUIRE(out.stages.size() == 3);
  // Stage 2 was seeded with stage 1's best (totals, unchanged).
  const auto& prev = out.stages[0].best;
  CHECK(std::any_of(first_batch_of_stage2.begin(), first_batch_of_stage2.end(),
                    [&](const search_point& p) { return p.factors == prev.factors && p.n_hat == prev.n_hat; }));
  CHECK(out.factors.long_factor == out.stages[1].best.factors);
  CHECK(out.factors.short_factor == out.stages[2].best.factors);
  CHECK(out.factors.n_hat == out.stages[1].best.n_hat);
  CHECK(out.factors.max_position == 16 * l0);
  CHECK(out.factors.original_max_position == l0);
  for (double v : out.factors.short_factor) CHECK(v <= 1.2);

  // The result as a rope_config and as transformers' rope_scaling block, read back by json.hpp.
  rope_config geometry;
  geometry.head_dim = 12;
  const auto cfg = out.factors.to_rope_config(geometry);
  CHECK(cfg.type == rope_type::longrope);
  CHECK(cfg.max_position_embeddings == 16 * l0);
  const auto block = to_rope_scaling_json(out.factors, geometry);
  CHECK(block["type"] == "longrope");
  CHECK(block["long_factor"].get<std::vector<double>>() == out.factors.long_factor);
  CHECK(block["short_factor"].get<std::vector<double>>() == out.factors.short_factor);
  CHECK(block["original_max_position_embeddings"] == l0);
  if (out.factors.n_hat != 0) CHECK(block["n_hat"] == out.factors.n_hat);
  nlohmann::json config = {{"head_dim", 12}, {"max_position_embeddings", 16 * l0}, {"rope_scaling", block}};
  const auto reread = rope_config_from_json(config);
  CHECK(reread.longrope.long_factor == out.factors.long_factor);
  CHECK(reread.longrope.original_max_position == l0);
  CHECK(reread.n_hat == out.factors.n_hat);

  CHECK_THROWS_WITH(run_progressive({}, [](std::size_t, const search_stage&, const std::vector<search_point>&) {
                      return std::vector<double>{};
                    }),
                    Catch::Contains("no stages"));
}

TEST_CASE("format_progress: one CLI line") {
  search_progress p;
  p.iteration = 12;
  p.iterations = 40;
  p.best_score = 4.312071;
  p.evaluations = 448;
  p.elapsed_seconds = 63.2;
  p.seconds_left = 130.0;
  CHECK(format_progress(p) == "iter 12/40  best 4.31207  evals 448  elapsed 1m03s  left ~2m10s");
  p.seconds_left = std::nan("");
  p.elapsed_seconds = 7300;
  p.status = stop_reason::converged;
  CHECK(format_progress(p) == "iter 12/40  best 4.31207  evals 448  elapsed 2h01m  left ~?  done: converged");
}

TEST_CASE("run_parallel: one pool for the whole run, so per-thread state is built once per thread") {
  const auto t = make_target(6, 3.0);
  const search_space sp(default_space_config(t));
  search_options o = small_options(9);
  o.threads = 3;
  std::mutex m;
  std::set<std::thread::id> ids;
  std::atomic<int> setups{0};
  evolutionary_search s(sp, o, t);
  const auto r = s.run_parallel([&](const search_point& p) {
    thread_local bool ready = false;  // e.g. a per-thread model workspace
    if (!ready) {
      ready = true;
      ++setups;
    }
    {
      std::lock_guard<std::mutex> lock(m);
      ids.insert(std::this_thread::get_id());
    }
    return bowl{{1, 1.5, 2, 2.5, 3, 3.5}}(p);
  });
  CHECK(r.iterations == o.iterations);
  CHECK(ids.size() <= 3);
  CHECK(setups.load() == static_cast<int>(ids.size()));  // not once per generation
}

TEST_CASE("to_rope_config: what a fitness evaluates for a candidate") {
  auto t = make_target(4, 8.0, 4096);
  t.rope.base = 500000.0;
  t.rope.layout = pair_layout::interleaved;
  const search_point p{{1.0, 2.0, 4.0, 8.0}, 4};
  const auto cfg = to_rope_config(t, p);
  CHECK(cfg.type == rope_type::longrope);
  CHECK(cfg.base == 500000.0);
  CHECK(cfg.layout == pair_layout::interleaved);
  CHECK(cfg.max_position_embeddings == 32768);
  CHECK(cfg.longrope.original_max_position == 4096);
  CHECK(cfg.n_hat == 4);
  // At the target length (either policy) the frequencies use exactly these factors.
  const rope_frequencies f(cfg, {32768});
  CHECK(f.rescale_factors() == p.factors);
  CHECK(f.attention_factor() == Approx(std::sqrt(1.0 + std::log(8.0) / std::log(4096.0))));
  CHECK_THROWS_WITH(to_rope_config(t, search_point{{1.0}, 0}), Catch::Contains("longrope.config"));
}
