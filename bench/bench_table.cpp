// Table generation: the library (vector and scalar reference) next to a naive
// float loop and next to the time it takes just to write the same bytes, in
// one binary. See docs/performance.md for the figures and the command.
//
// Counters: items_per_second = rotary pairs (one cos and one sin each),
// bytes_per_second = bytes of the cos and sin tables written.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include <benchmark/benchmark.h>

#include <longrope/longrope.hpp>

namespace {

// Phi-3.5-mini-like LongRoPE: head_dim 96 (48 pairs), L0 4096, 131072 target,
// long factors rising from 1 to 64 (the shape of the real ones).
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

// LongRoPE-2M-like: head_dim 128 (64 pairs), L0 4096 scaled to 2,097,152.
longrope::rope_frequencies longrope_2m() {
  longrope::rope_config c;
  c.head_dim = 128;
  c.type = longrope::rope_type::longrope;
  c.max_position_embeddings = 2097152;
  c.longrope.original_max_position = 4096;
  c.longrope.short_factor.assign(64, 1.0);
  c.longrope.long_factor.resize(64);
  for (int i = 0; i < 64; ++i) c.longrope.long_factor[static_cast<std::size_t>(i)] = 1.0 + 639.0 * i / 63.0;
  return longrope::rope_frequencies(c, {2097152});
}

longrope::rope_frequencies freqs_for(int pairs) { return pairs == 48 ? phi35_like_long() : longrope_2m(); }

void set_counters(benchmark::State& state, std::int64_t n, int pairs) {
  state.SetItemsProcessed(state.iterations() * n * pairs);
  state.SetBytesProcessed(state.iterations() * n * pairs * 2 * static_cast<std::int64_t>(sizeof(float)));
}

// Naive baseline (reference implementations): angles in float, std::cos and
// std::sin per element.
void BM_table_naive(benchmark::State& state) {
  const std::int64_t n = state.range(0);
  const int pairs = static_cast<int>(state.range(1));
  const auto f = freqs_for(pairs);
  std::vector<float> inv(f.inv_freq().begin(), f.inv_freq().end());
  const auto np = static_cast<std::size_t>(pairs);
  std::vector<float> c(static_cast<std::size_t>(n) * np), s(c.size());
  for (auto _ : state) {
    for (std::int64_t p = 0; p < n; ++p) {
      float* cr = c.data() + static_cast<std::size_t>(p) * np;
      float* sr = s.data() + static_cast<std::size_t>(p) * np;
      for (std::size_t i = 0; i < np; ++i) {
        const float a = static_cast<float>(p) * inv[i];
        cr[i] = std::cos(a);
        sr[i] = std::sin(a);
      }
    }
    benchmark::DoNotOptimize(c.data());
    benchmark::DoNotOptimize(s.data());
    benchmark::ClobberMemory();
  }
  set_counters(state, n, pairs);
}

// The library: fill_table, exact angles (vector path unless LONGROPE_FORCE_SCALAR).
void BM_table_exact(benchmark::State& state) {
  const std::int64_t n = state.range(0);
  const int pairs = static_cast<int>(state.range(1));
  const auto f = freqs_for(pairs);
  std::vector<float> c(static_cast<std::size_t>(n * pairs)), s(c.size());
  for (auto _ : state) {
    longrope::fill_table<float>(f, longrope::position_range{0, n}, {c.data(), n, pairs}, {s.data(), n, pairs});
    benchmark::DoNotOptimize(c.data());
    benchmark::DoNotOptimize(s.data());
    benchmark::ClobberMemory();
  }
  set_counters(state, n, pairs);
  state.SetLabel(longrope::isa_name(longrope::active_isa()));
}

// The library's scalar reference row (std::cos/std::sin in double), for scale.
void BM_table_scalar_reference(benchmark::State& state) {
  const std::int64_t n = state.range(0);
  const int pairs = static_cast<int>(state.range(1));
  const auto f = freqs_for(pairs);
  std::vector<float> c(static_cast<std::size_t>(n * pairs)), s(c.size());
  for (auto _ : state) {
    for (std::int64_t p = 0; p < n; ++p) {
      longrope::detail::table_row_scalar(f, p, c.data() + p * pairs, s.data() + p * pairs,
                                         longrope::angle_precision::exact);
    }
    benchmark::DoNotOptimize(c.data());
    benchmark::ClobberMemory();
  }
  set_counters(state, n, pairs);
}

// The write floor: storing the same bytes (a constant), nothing computed.
void BM_table_write_floor(benchmark::State& state) {
  const std::int64_t n = state.range(0);
  const int pairs = static_cast<int>(state.range(1));
  std::vector<float> c(static_cast<std::size_t>(n * pairs)), s(c.size());
  float v = 0.5f;
  for (auto _ : state) {
    benchmark::DoNotOptimize(v);
    std::fill(c.begin(), c.end(), v);
    std::fill(s.begin(), s.end(), v);
    benchmark::DoNotOptimize(c.data());
    benchmark::DoNotOptimize(s.data());
    benchmark::ClobberMemory();
  }
  set_counters(state, n, pairs);
}

// The streaming write floor: the same bytes with non-temporal stores after
// peeling to a 64-byte boundary (what fill_table does above 8 MiB), so no line
// is read for ownership; the fastest a table can be written on this machine.
void BM_table_stream_floor(benchmark::State& state) {
  const std::int64_t n = state.range(0);
  const int pairs = static_cast<int>(state.range(1));
  std::vector<float> c(static_cast<std::size_t>(n * pairs)), s(c.size());
  const std::vector<float> src(4096, 0.5f);
  const int isa = longrope::detail::isa_active();
  for (auto _ : state) {
    for (std::size_t i = 0; i < c.size(); i += src.size()) {
      const std::size_t m = std::min(src.size(), c.size() - i);
      if (!longrope::detail::stream_copy_isa(isa, c.data() + i, src.data(), m)) std::copy_n(src.data(), m, c.data() + i);
      if (!longrope::detail::stream_copy_isa(isa, s.data() + i, src.data(), m)) std::copy_n(src.data(), m, s.data() + i);
    }
    longrope::detail::stream_fence_isa(isa);
    benchmark::DoNotOptimize(c.data());
    benchmark::DoNotOptimize(s.data());
    benchmark::ClobberMemory();
  }
  set_counters(state, n, pairs);
}

BENCHMARK(BM_table_naive)->Args({131072, 48})->Unit(benchmark::kMillisecond);
BENCHMARK(BM_table_exact)->Args({131072, 48})->Unit(benchmark::kMillisecond);
BENCHMARK(BM_table_scalar_reference)->Args({131072, 48})->Unit(benchmark::kMillisecond);
BENCHMARK(BM_table_write_floor)->Args({131072, 48})->Unit(benchmark::kMillisecond);
BENCHMARK(BM_table_stream_floor)->Args({131072, 48})->Unit(benchmark::kMillisecond);
// 2,097,152 x 64: 1 GiB of output; the naive loop takes seconds, one iteration each.
BENCHMARK(BM_table_naive)->Args({2097152, 64})->Unit(benchmark::kMillisecond)->Iterations(1);
BENCHMARK(BM_table_exact)->Args({2097152, 64})->Unit(benchmark::kMillisecond)->Iterations(3);
BENCHMARK(BM_table_write_floor)->Args({2097152, 64})->Unit(benchmark::kMillisecond)->Iterations(3);

}  // namespace
