// The short/long switch (kv_switch.hpp) against the re-prefill it replaces,
// for one Phi-3-mini-sized layer: hidden 3072, 32 query heads, 32 kv heads,
// head_dim 96 (48 rotary pairs, half-split), L0 = 4096, at N = 4k, 32k and
// 128k cached tokens. See docs/engines.md ("The switch") for the figures.
//
// BM_switch/N: switch_kv on the layer's key cache [32][N][96] (head-major,
//   float, positions 0..N-1): per token the 48 delta cos/sin (double angle),
//   then every head re-rotated in place. Iterations alternate 4096 -> 4097 and
//   4097 -> 4096 (short -> long, long -> short: the same work), so the cache
//   stays bounded. Counted: everything switch_kv does. bytes_per_second = the
//   cache read and written.
// BM_switch_bf16/32768: the same on a bfloat16 cache.
// BM_reprefill/N: the least a re-prefill of the same layer must do to rebuild
//   those keys: for every token, q = x Wq^T and k = x Wk^T (the layer's input
//   x: 3072 floats; 2 x 3072 x 3072 weights, one Eigen float GEMM per chunk of
//   512 tokens, 1 thread), rotate_qk with the long factors, k written into the
//   head-major cache. NOT counted (a real re-prefill pays them too, so the
//   ratio is a lower bound on what the switch saves): the v projection, the
//   attention itself (O(N^2)), o projection, MLP, norms, and the re-prefill of
//   every earlier layer needed to produce this layer's input. The same input
//   chunk is reused for every chunk (values do not change the cost).
//   Iterations(1) per repetition: one 128k run is ~5 x 10^12 flops. Both
//   report CPU time (1 thread; the wall time on a shared machine is noisier).
#include <algorithm>
#include <cstdint>
#include <vector>

#include <Eigen/Core>
#include <benchmark/benchmark.h>

#include <longrope/kv_switch.hpp>
#include <longrope/longrope.hpp>

namespace {

constexpr std::ptrdiff_t kHidden = 3072;
constexpr std::ptrdiff_t kHeads = 32;
constexpr std::ptrdiff_t kHeadDim = 96;
constexpr int kPairs = 48;
constexpr std::ptrdiff_t kChunk = 512;

longrope::rope_config phi3_mini_config() {
  longrope::rope_config c;
  c.head_dim = kHeadDim;
  c.layout = longrope::pair_layout::half_split;
  c.type = longrope::rope_type::longrope;
  c.max_position_embeddings = 131072;
  c.longrope.original_max_position = 4096;
  c.longrope.short_factor.resize(kPairs);
  c.longrope.long_factor.resize(kPairs);
  for (int i = 0; i < kPairs; ++i) {
    const auto k = static_cast<std::size_t>(i);
    c.longrope.short_factor[k] = 1.0 + 0.05 * i / (kPairs - 1);  // Phi-3's short factors are ~1 to ~1.1 ...
    c.longrope.long_factor[k] = 1.0 + 63.0 * i / (kPairs - 1);   // ... its long ones ~1 to ~60
  }
  return c;
}

template <class T>
void switch_bench(benchmark::State& state) {
  const std::ptrdiff_t n = state.range(0);
  const longrope::factor_switch sw(phi3_mini_config(), longrope::factor_policy::by_sequence_length);
  std::vector<T> cache(static_cast<std::size_t>(kHeads * n * kHeadDim));
  for (std::size_t i = 0; i < cache.size(); ++i) {
    cache[i] = static_cast<T>(static_cast<float>((i * 7919) % 1000) * 1e-3f - 0.5f);
  }
  std::vector<std::int64_t> pos(static_cast<std::size_t>(n));
  for (std::ptrdiff_t t = 0; t < n; ++t) pos[static_cast<std::size_t>(t)] = t;
  const auto view = longrope::head_major(cache.data(), 1, kHeads, n, kHeadDim);
  bool up = true;
  for (auto _ : state) {
    const auto set = up ? longrope::switch_kv(sw, view, {pos.data(), 0}, 4096, 4097)
                        : longrope::switch_kv(sw, view, {pos.data(), 0}, 4097, 4096);
    benchmark::DoNotOptimize(set);
    benchmark::ClobberMemory();
    up = !up;
  }
  state.SetBytesProcessed(state.iterations() * 2 * static_cast<std::int64_t>(cache.size() * sizeof(T)));
  state.SetItemsProcessed(state.iterations() * n);  // tokens switched
}

void BM_switch(benchmark::State& state) { switch_bench<float>(state); }
void BM_switch_bf16(benchmark::State& state) { switch_bench<Eigen::bfloat16>(state); }

void BM_reprefill(benchmark::State& state) {
  using mat = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  const std::ptrdiff_t n = state.range(0);
  const longrope::factor_switch sw(phi3_mini_config(), longrope::factor_policy::by_sequence_length);
  const auto& f = sw.frequencies_for(n);
  mat x(kChunk, kHidden);
  mat wqk(2 * kHidden, kHidden);  // Wq rows then Wk rows (32 heads x 96 = 3072 each)
  for (Eigen::Index r = 0; r < x.rows(); ++r)
    for (Eigen::Index c = 0; c < x.cols(); ++c) x(r, c) = static_cast<float>((r * 31 + c * 17) % 101) * 1e-2f - 0.5f;
  for (Eigen::Index r = 0; r < wqk.rows(); ++r)
    for (Eigen::Index c = 0; c < wqk.cols(); ++c) wqk(r, c) = static_cast<float>((r * 13 + c * 7) % 97) * 1e-4f - 5e-3f;
  mat qk(kChunk, 2 * kHidden);
  std::vector<float> cache(static_cast<std::size_t>(kHeads * n * kHeadDim));
  std::vector<std::int64_t> pos(static_cast<std::size_t>(kChunk));
  for (auto _ : state) {
    for (std::ptrdiff_t t0 = 0; t0 < n; t0 += kChunk) {
      const std::ptrdiff_t m = std::min(kChunk, n - t0);
      for (std::ptrdiff_t i = 0; i < m; ++i) pos[static_cast<std::size_t>(i)] = t0 + i;
      qk.topRows(m).noalias() = x.topRows(m) * wqk.transpose();
      const std::ptrdiff_t ld = 2 * kHidden;
      const longrope::heads_view<float> q{qk.data(), 1, m, kHeads, kHeadDim, m * ld, ld, kHeadDim};
      const longrope::heads_view<float> k{qk.data() + kHidden, 1, m, kHeads, kHeadDim, m * ld, ld, kHeadDim};
      longrope::rotate_qk(f, q, k, {pos.data(), 0}, {0, m});
      for (std::ptrdiff_t h = 0; h < kHeads; ++h) {
        for (std::ptrdiff_t i = 0; i < m; ++i) {
          std::copy_n(k.at(0, i, h), kHeadDim, cache.data() + (h * n + t0 + i) * kHeadDim);
        }
      }
    }
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(state.iterations() * n);  // tokens re-prefilled
  state.counters["flops"] = benchmark::Counter(static_cast<double>(state.iterations()) * 2.0 * static_cast<double>(n) *
                                                   kHidden * 2.0 * kHidden,
                                               benchmark::Counter::kIsRate);
}

BENCHMARK(BM_switch)->Arg(4096)->Arg(32768)->Arg(131072)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_switch_bf16)->Arg(32768)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_reprefill)->Arg(4096)->Arg(32768)->Arg(131072)->Unit(benchmark::kMillisecond)->Iterations(1);

}  // namespace
