// Table generation: the library next to a naive float loop. Each library workload runs next
// to a naive baseline in the same binary; see docs/performance.md.
#include <cmath>
#include <vector>

#include <benchmark/benchmark.h>

#include <longrope/longrope.hpp>

namespace {

longrope::rope_frequencies phi35_like_long() {
  longrope::rope_config c;
  c.head_dim = 96;
  c.type = longrope::rope_type::longrope;
  c.max_position_embeddings = 131072;
  c.longrope.original_max_position = 4096;
  c.longrope.short_factor.assign(48, 1.0);
  c.longrope.long_factor.resize(48);
  for (int i = 0; i < 48; ++i) c.longrope.long_factor[static_cast<std::size_t>(i)] = 1.0 + 63.0 * i / 47.0;
  return longrope::rope_frequencies(c, {131072});
}

// Naive baseline: angles in float, std::cos / std::sin per element.
void BM_table_naive(benchmark::State& state) {
  const auto f = phi35_like_long();
  const std::int64_t n = state.range(0);
  std::vector<float> inv(f.inv_freq().begin(), f.inv_freq().end());
  std::vector<float> c(static_cast<std::size_t>(n) * 48), s(c.size());
  for (auto _ : state) {
    for (std::int64_t p = 0; p < n; ++p) {
      for (int i = 0; i < 48; ++i) {
        const float a = static_cast<float>(p) * inv[static_cast<std::size_t>(i)];
        c[static_cast<std::size_t>(p * 48 + i)] = std::cos(a);
        s[static_cast<std::size_t>(p * 48 + i)] = std::sin(a);
      }
    }
    benchmark::DoNotOptimize(c.data());
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(state.iterations() * n * 48);
}
BENCHMARK(BM_table_naive)->Arg(131072)->Unit(benchmark::kMillisecond);

void BM_table_exact(benchmark::State& state) {
  const auto f = phi35_like_long();
  const std::int64_t n = state.range(0);
  std::vector<float> c(static_cast<std::size_t>(n) * 48), s(c.size());
  for (auto _ : state) {
    longrope::fill_table<float>(f, longrope::position_range{0, n}, {c.data(), n, 48}, {s.data(), n, 48});
    benchmark::DoNotOptimize(c.data());
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(state.iterations() * n * 48);
}
BENCHMARK(BM_table_exact)->Arg(131072)->Unit(benchmark::kMillisecond);

}  // namespace

