// The evolutionary search's own cost per generation (everything but the
// fitness): drawing N1 + N2 children, duplicate checks against the cache,
// ranking, bookkeeping. Paper sizes: P = 64, N1 = N2 = 16, k = 32, 64 pairs
// (head_dim 128). Next to it, a naive baseline that only draws the same number
// of children with the operators (no cache, no ranking), so the driver's
// overhead over the bare operators is visible. A real fitness (a forward pass
// over a few long documents) costs 50 ms and more per candidate, i.e. >= 1.6 s
// per generation of 32 children; see docs/search.md for the measured figures.
#include <cstdint>
#include <vector>

#include <benchmark/benchmark.h>

#include <longrope/search.hpp>

namespace {

longrope::search_target target64() {
  longrope::search_target t;
  t.rope.head_dim = 128;  // 64 rotary pairs
  t.original_length = 4096;
  t.scale = 8.0;
  return t;
}

// A trivial fitness: a bowl, so the ranking sees distinct scores.
double trivial(const longrope::search_point& p) {
  double a = static_cast<double>(p.n_hat) * 1e-3;
  for (std::size_t i = 0; i < p.factors.size(); ++i) {
    const double d = p.factors[i] - (1.0 + 0.1 * static_cast<double>(i));
    a += d * d;
  }
  return a;
}

// One full paper-sized search (generation 0 + 40 generations, 1344 evaluations)
// per iteration; reported per generation. The fitness is included but trivial
// (~1 us per candidate).
void BM_search_driver_per_generation(benchmark::State& state) {
  const auto t = target64();
  const longrope::search_space sp(longrope::default_space_config(t));
  longrope::search_options o;  // paper defaults: 64 / 16 / 16 / 32 / 40 / 0.3
  std::int64_t generations = 0;
  std::int64_t evaluations = 0;
  for (auto _ : state) {
    longrope::evolutionary_search s(sp, o, t);
    while (!s.done()) {
      const auto pts = s.ask_points();
      std::vector<double> scores(pts.size());
      for (std::size_t i = 0; i < pts.size(); ++i) scores[i] = trivial(pts[i]);
      s.tell(scores);
      ++generations;
    }
    evaluations += s.result().evaluations;
    benchmark::DoNotOptimize(s.best().score);
  }
  state.counters["s_per_generation"] = benchmark::Counter(
      static_cast<double>(generations), benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
  state.SetItemsProcessed(evaluations);
}
BENCHMARK(BM_search_driver_per_generation)->Unit(benchmark::kMillisecond);

// Naive baseline: the same number of children (32 per generation, 41
// generations) drawn from a fixed 32-parent elite with the bare operators,
// scored with the same trivial fitness: no cache, no duplicate checks, no ranking.
void BM_search_operators_only(benchmark::State& state) {
  const auto t = target64();
  const longrope::search_space sp(longrope::default_space_config(t));
  const auto seeds = longrope::make_seeds(sp, t, {});
  longrope::search_rng g(1);
  std::vector<longrope::candidate> elite;
  for (int i = 0; i < 32; ++i) elite.push_back(longrope::mutate(sp, seeds[static_cast<std::size_t>(i) % seeds.size()], 0.3, g));
  std::int64_t generations = 0;
  for (auto _ : state) {
    double acc = 0.0;
    for (int gen = 0; gen < 41; ++gen) {
      for (int j = 0; j < 16; ++j) {
        auto c = longrope::mutate(sp, elite[longrope::uniform_index(g, 32)], 0.3, g);
        longrope::mutate_n_hat(sp, c, 0.3, g);
        acc += trivial(sp.point(c));
      }
      for (int j = 0; j < 16; ++j) {
        const auto c = longrope::crossover(sp, elite[longrope::uniform_index(g, 32)], elite[longrope::uniform_index(g, 32)], g);
        acc += trivial(sp.point(*c));
      }
      ++generations;
    }
    benchmark::DoNotOptimize(acc);
  }
  state.counters["s_per_generation"] = benchmark::Counter(
      static_cast<double>(generations), benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
  state.SetItemsProcessed(generations * 32);
}
BENCHMARK(BM_search_operators_only)->Unit(benchmark::kMillisecond);

// The JSON-free part of a checkpoint (copying the state out) after a full
// search: what a per-generation checkpoint costs before serialisation.
void BM_search_checkpoint_copy(benchmark::State& state) {
  const auto t = target64();
  const longrope::search_space sp(longrope::default_space_config(t));
  longrope::evolutionary_search s(sp, longrope::search_options{}, t);
  s.run_parallel(trivial);
  for (auto _ : state) {
    auto cp = s.checkpoint();
    benchmark::DoNotOptimize(cp.cache.data());
  }
  state.counters["cached"] = static_cast<double>(s.cache().size());
}
BENCHMARK(BM_search_checkpoint_copy)->Unit(benchmark::kMicrosecond);

}  // namespace
