// q/k rotation: prefill and decode workloads, the library next to a naive
// reference-style loop and the memory floor, in one binary. See
// docs/performance.md for the figures and the command.
//
// Counters: bytes_per_second = q + k bytes read and written (2 x the buffer),
// items_per_second = rotary pairs rotated (tokens x (q heads + k heads) x pairs).
//
// Workloads (LongRoPE, head_dim 128, 64 pairs, attention factor pinned to 1
// so repeated in-place rotation keeps the values bounded; the kernels do not
// depend on it):
//   prefill  q [4096][32][128] + k [4096][8][128], positions 0..4095
//   decode   q [1][32][128] + k [1][8][128], position 100,000, table-free
#include <cmath>
#include <cstdint>
#include <cstring>
#include <new>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

#include <benchmark/benchmark.h>

#include <longrope/longrope.hpp>

namespace {

constexpr std::ptrdiff_t kTokens = 4096;
constexpr std::ptrdiff_t kQHeads = 32;
constexpr std::ptrdiff_t kKHeads = 8;
constexpr std::ptrdiff_t kHeadDim = 128;
constexpr int kPairs = 64;

longrope::rope_frequencies bench_freqs(longrope::pair_layout layout) {
  longrope::rope_config c;
  c.head_dim = 128;
  c.layout = layout;
  c.type = longrope::rope_type::longrope;
  c.max_position_embeddings = 131072;
  c.longrope.original_max_position = 4096;
  c.longrope.short_factor.assign(64, 1.0);
  c.longrope.long_factor.resize(64);
  for (int i = 0; i < 64; ++i) c.longrope.long_factor[static_cast<std::size_t>(i)] = 1.0 + 63.0 * i / 63.0;
  c.longrope.attention_factor = 1.0;
  return longrope::rope_frequencies(c, {131072});
}

// n elements of T starting `offset_bytes` past a 64-byte boundary: offset 0 is
// the aligned case, 16 where a large std::vector<float> lands (glibc's mmap'd
// chunks start 16 bytes past a page).
template <class T>
struct offset_buffer {
  std::vector<unsigned char> raw;
  T* ptr = nullptr;
  std::size_t n = 0;
  offset_buffer(std::size_t count, std::size_t offset_bytes) : raw(count * sizeof(T) + 64 + offset_bytes), n(count) {
    const auto addr = reinterpret_cast<std::uintptr_t>(raw.data());
    const std::uintptr_t aligned = (addr + 63) & ~static_cast<std::uintptr_t>(63);
    ptr = reinterpret_cast<T*>(aligned + offset_bytes);
    for (std::size_t i = 0; i < count; ++i) new (ptr + i) T();
  }
  T* data() { return ptr; }
  const T* data() const { return ptr; }
  std::size_t size() const { return n; }
  T& operator[](std::size_t i) { return ptr[i]; }
};

template <class T>
struct qk_buffers {
  offset_buffer<T> q;
  offset_buffer<T> k;
  std::vector<std::int64_t> pos;
  qk_buffers(std::ptrdiff_t tokens, std::int64_t first_pos, std::size_t offset_bytes = 0)
      : q(static_cast<std::size_t>(tokens * kQHeads * kHeadDim), offset_bytes),
        k(static_cast<std::size_t>(tokens * kKHeads * kHeadDim), offset_bytes),
        pos(static_cast<std::size_t>(tokens)) {
    for (std::size_t i = 0; i < q.size(); ++i) q[i] = static_cast<T>(static_cast<float>((i * 7919) % 1000) * 1e-3f - 0.5f);
    for (std::size_t i = 0; i < k.size(); ++i) k[i] = static_cast<T>(static_cast<float>((i * 104729) % 1000) * 1e-3f - 0.5f);
    for (std::ptrdiff_t t = 0; t < tokens; ++t) pos[static_cast<std::size_t>(t)] = first_pos + t;
  }
  std::ptrdiff_t tokens() const { return static_cast<std::ptrdiff_t>(pos.size()); }
  longrope::heads_view<T> qv() { return longrope::token_major(q.data(), 1, tokens(), kQHeads, kHeadDim); }
  longrope::heads_view<T> kv() { return longrope::token_major(k.data(), 1, tokens(), kKHeads, kHeadDim); }
  longrope::positions_view pv() const { return {pos.data(), 0}; }
};

template <class T>
void set_counters(benchmark::State& state, std::ptrdiff_t tokens) {
  const std::int64_t elems = tokens * (kQHeads + kKHeads) * kHeadDim;
  state.SetBytesProcessed(state.iterations() * 2 * elems * static_cast<std::int64_t>(sizeof(T)));
  state.SetItemsProcessed(state.iterations() * tokens * (kQHeads + kKHeads) * kPairs);
}

// Runs fn(range) over [0, tokens) split across `threads` threads (1: inline).
template <class F>
void split_run(int threads, std::ptrdiff_t tokens, F&& fn) {
  if (threads <= 1) {
    fn(longrope::token_range{0, tokens});
    return;
  }
  const std::ptrdiff_t mid = tokens / 2;
  std::thread other([&] { fn(longrope::token_range{mid, tokens}); });
  fn(longrope::token_range{0, mid});
  other.join();
}

// ---------------------------------------------------------------------------
// Prefill

struct table_storage {
  offset_buffer<float> c;
  offset_buffer<float> s;
  longrope::rope_table table;
  table_storage(const longrope::rope_frequencies& f, std::int64_t rows)
      : c(static_cast<std::size_t>(rows * f.pairs()), 0), s(c.size(), 0) {
    longrope::fill_table<float>(f, longrope::position_range{0, rows}, {c.data(), rows, f.pairs()},
                                {s.data(), rows, f.pairs()});
    table = {{c.data(), rows, f.pairs()}, {s.data(), rows, f.pairs()}, 0};
  }
};

// range(0): 0 table-free, 1 table; range(1): threads; q and k sit `offset`
// bytes past a 64-byte boundary.
template <class T, longrope::pair_layout Layout>
void prefill_run(benchmark::State& state, std::size_t offset) {
  const bool use_table = state.range(0) != 0;
  const int threads = static_cast<int>(state.range(1));
  const auto f = bench_freqs(Layout);
  qk_buffers<T> b(kTokens, 0, offset);
  const table_storage ts(f, kTokens);
  const auto q = b.qv();
  const auto k = b.kv();
  const auto pv = b.pv();
  for (auto _ : state) {
    split_run(threads, kTokens, [&](longrope::token_range r) {
      if (use_table) {
        longrope::rotate_qk(f, ts.table, q, k, pv, r);
      } else {
        longrope::rotate_qk(f, q, k, pv, r);
      }
    });
    benchmark::DoNotOptimize(b.q.data());
    benchmark::DoNotOptimize(b.k.data());
    benchmark::ClobberMemory();
  }
  set_counters<T>(state, kTokens);
  state.SetLabel(longrope::isa_name(longrope::active_isa()));
}

template <class T, longrope::pair_layout Layout>
void BM_prefill(benchmark::State& state) {
  prefill_run<T, Layout>(state, 0);
}

// q and k 16 bytes past a 64-byte boundary, where a std::vector<float> of this
// size lands.
template <class T, longrope::pair_layout Layout>
void BM_prefill_offset16(benchmark::State& state) {
  prefill_run<T, Layout>(state, 16);
}

// Naive baseline, as the reference implementations (llama2.c, transformers
// without fusion) do it: angles in float, std::cos/std::sin per element
// (per token, head and pair), then the rotation; half-split.
void BM_prefill_naive(benchmark::State& state) {
  const auto f = bench_freqs(longrope::pair_layout::half_split);
  qk_buffers<float> b(kTokens, 0);
  std::vector<float> inv(f.inv_freq().begin(), f.inv_freq().end());
  auto rot = [&](float* x, std::ptrdiff_t heads, std::ptrdiff_t t) {
    const float p = static_cast<float>(b.pos[static_cast<std::size_t>(t)]);
    for (std::ptrdiff_t h = 0; h < heads; ++h) {
      float* v = x + (t * heads + h) * kHeadDim;
      for (int i = 0; i < kPairs; ++i) {
        const float a = p * inv[static_cast<std::size_t>(i)];
        const float c = std::cos(a);
        const float s = std::sin(a);
        const float x0 = v[i];
        const float x1 = v[i + kPairs];
        v[i] = x0 * c - x1 * s;
        v[i + kPairs] = x0 * s + x1 * c;
      }
    }
  };
  for (auto _ : state) {
    for (std::ptrdiff_t t = 0; t < kTokens; ++t) {
      rot(b.q.data(), kQHeads, t);
      rot(b.k.data(), kKHeads, t);
    }
    benchmark::DoNotOptimize(b.q.data());
    benchmark::ClobberMemory();
  }
  set_counters<float>(state, kTokens);
}

// The memory floor: one in-place read-and-write pass over the same q + k
// bytes (x *= 1, vectorised by the compiler): no rotation can be faster.
// range(0): bytes per element of the workload it stands next to (4 float, 2 bf16).
void BM_prefill_memory_floor(benchmark::State& state) {
  const std::ptrdiff_t elem_bytes = state.range(0);
  const int threads = static_cast<int>(state.range(1));
  // The same number of bytes, viewed as floats.
  const std::ptrdiff_t floats_per_token = (kQHeads + kKHeads) * kHeadDim * elem_bytes / 4;
  offset_buffer<float> buf(static_cast<std::size_t>(kTokens * floats_per_token), 0);
  for (std::size_t i = 0; i < buf.size(); ++i) buf[i] = 0.25f;
  float one = 1.0f;
  benchmark::DoNotOptimize(one);
  for (auto _ : state) {
    split_run(threads, kTokens, [&](longrope::token_range r) {
      float* p = buf.data() + r.begin * floats_per_token;
      const std::ptrdiff_t n = r.size() * floats_per_token;
      for (std::ptrdiff_t i = 0; i < n; ++i) p[i] *= one;
    });
    benchmark::DoNotOptimize(buf.data());
    benchmark::ClobberMemory();
  }
  const std::int64_t bytes = kTokens * (kQHeads + kKHeads) * kHeadDim * elem_bytes;
  state.SetBytesProcessed(state.iterations() * 2 * bytes);
  state.SetItemsProcessed(state.iterations() * kTokens * (kQHeads + kKHeads) * kPairs);
}

// The same pass with the library's software prefetch (issue 15): token by
// token, each token's bytes are asked for one token ahead while the current
// one is multiplied, as the rotation's token loop does. On a loaded 2-core
// machine the plain loop above leaves DRAM latency exposed and the prefetching
// rotation can beat it; this is the stronger floor the rotation rows are
// compared with. range(0): bytes per element.
void BM_prefill_memory_floor_prefetch(benchmark::State& state) {
  const std::ptrdiff_t elem_bytes = state.range(0);
  const std::ptrdiff_t floats_per_token = (kQHeads + kKHeads) * kHeadDim * elem_bytes / 4;
  offset_buffer<float> buf(static_cast<std::size_t>(kTokens * floats_per_token), 0);
  for (std::size_t i = 0; i < buf.size(); ++i) buf[i] = 0.25f;
  float one = 1.0f;
  benchmark::DoNotOptimize(one);
  for (auto _ : state) {
    for (std::ptrdiff_t t = 0; t < kTokens; ++t) {
      float* p = buf.data() + t * floats_per_token;
      const bool more = t + 1 < kTokens;
      for (std::ptrdiff_t i = 0; i < floats_per_token; i += 16) {
        if (more) __builtin_prefetch(p + floats_per_token + i, 0, 3);
        for (std::ptrdiff_t j = i; j < i + 16; ++j) p[j] *= one;
      }
    }
    benchmark::DoNotOptimize(buf.data());
    benchmark::ClobberMemory();
  }
  const std::int64_t bytes = kTokens * (kQHeads + kKHeads) * kHeadDim * elem_bytes;
  state.SetBytesProcessed(state.iterations() * 2 * bytes);
  state.SetItemsProcessed(state.iterations() * kTokens * (kQHeads + kKHeads) * kPairs);
}

using longrope::pair_layout;
using bf16 = Eigen::bfloat16;
using fp16 = Eigen::half;

BENCHMARK(BM_prefill_memory_floor)->ArgNames({"bytes", "threads"})->Args({4, 1})->Unit(benchmark::kMillisecond);
BENCHMARK_TEMPLATE(BM_prefill, float, pair_layout::half_split)
    ->ArgNames({"table", "threads"})->Args({1, 1})->Args({0, 1})->Unit(benchmark::kMillisecond);
BENCHMARK_TEMPLATE(BM_prefill, float, pair_layout::interleaved)
    ->ArgNames({"table", "threads"})->Args({1, 1})->Args({0, 1})->Unit(benchmark::kMillisecond);
BENCHMARK(BM_prefill_memory_floor)->ArgNames({"bytes", "threads"})->Args({2, 1})->Unit(benchmark::kMillisecond);
BENCHMARK_TEMPLATE(BM_prefill, bf16, pair_layout::half_split)
    ->ArgNames({"table", "threads"})->Args({1, 1})->Args({0, 1})->Unit(benchmark::kMillisecond);
BENCHMARK_TEMPLATE(BM_prefill, bf16, pair_layout::interleaved)
    ->ArgNames({"table", "threads"})->Args({1, 1})->Args({0, 1})->Unit(benchmark::kMillisecond);
BENCHMARK_TEMPLATE(BM_prefill, fp16, pair_layout::half_split)
    ->ArgNames({"table", "threads"})->Args({1, 1})->Args({0, 1})->Unit(benchmark::kMillisecond);
BENCHMARK_TEMPLATE(BM_prefill, fp16, pair_layout::interleaved)
    ->ArgNames({"table", "threads"})->Args({1, 1})->Args({0, 1})->Unit(benchmark::kMillisecond);
// q and k 16 bytes past a 64-byte boundary (a std::vector<float> of this size).
BENCHMARK_TEMPLATE(BM_prefill_offset16, float, pair_layout::half_split)
    ->ArgNames({"table", "threads"})->Args({1, 1})->Args({0, 1})->Unit(benchmark::kMillisecond);
BENCHMARK_TEMPLATE(BM_prefill_offset16, float, pair_layout::interleaved)
    ->ArgNames({"table", "threads"})->Args({1, 1})->Args({0, 1})->Unit(benchmark::kMillisecond);
BENCHMARK(BM_prefill_naive)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_prefill_memory_floor_prefetch)->ArgName("bytes")->Arg(4)->Arg(2)->Unit(benchmark::kMillisecond);
// Two threads (std::thread per iteration, token range split in halves).
BENCHMARK(BM_prefill_memory_floor)
    ->ArgNames({"bytes", "threads"})->Args({4, 2})->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_TEMPLATE(BM_prefill, float, pair_layout::half_split)
    ->ArgNames({"table", "threads"})->Args({1, 2})->Args({0, 2})->Unit(benchmark::kMillisecond)->UseRealTime();

// Cache-resident rotation: 32 tokens of q [32][32][128] + k [32][8][128] from
// a table (320 KiB in bf16, inside L2), as an engine rotating one tile right
// after its QKV projection; here the instructions per vector count, not DRAM.
// range(0) for bfloat16: 1 the AVX512-BF16 store where the CPU has it (in a
// consumer built without -march: the avx512bf16 kernel set), 0 the integer
// rounding of the plain avx512 kernels, side by side in one binary (with or
// without -march: both sets are compiled either way).
template <class T>
void BM_rotate_cached(benchmark::State& state) {
  constexpr std::ptrdiff_t kTile = 32;
  longrope::detail::avx512_bf16_native_set(state.range(0) != 0);
  const auto f = bench_freqs(longrope::pair_layout::half_split);
  qk_buffers<T> b(kTile, 0);
  const table_storage ts(f, kTile);
  for (auto _ : state) {
    longrope::rotate_qk(f, ts.table, b.qv(), b.kv(), b.pv(), {0, kTile});
    benchmark::DoNotOptimize(b.q.data());
    benchmark::ClobberMemory();
  }
  longrope::detail::avx512_bf16_native_set(true);
  set_counters<T>(state, kTile);
  state.SetLabel(
      std::string(longrope::isa_name(longrope::active_isa())) +
      (std::is_same_v<T, bf16> && state.range(0) != 0 && longrope::detail::avx512_bf16_cpu() ? "+bf16" : ""));
}
BENCHMARK_TEMPLATE(BM_rotate_cached, float)->ArgName("native_bf16")->Arg(1);
BENCHMARK_TEMPLATE(BM_rotate_cached, fp16)->ArgName("native_bf16")->Arg(1);
BENCHMARK_TEMPLATE(BM_rotate_cached, bf16)->ArgName("native_bf16")->Arg(1)->Arg(0);

// The same tile table-free at positions 100000 .. 100031: the difference to
// BM_rotate_cached is the cost of the tokens' cos/sin (one double sincos row
// per token) where nothing waits on DRAM.
template <class T>
void BM_rotate_cached_free(benchmark::State& state) {
  constexpr std::ptrdiff_t kTile = 32;
  const auto f = bench_freqs(longrope::pair_layout::half_split);
  qk_buffers<T> b(kTile, 100000);
  for (auto _ : state) {
    longrope::rotate_qk(f, b.qv(), b.kv(), b.pv(), {0, kTile});
    benchmark::DoNotOptimize(b.q.data());
    benchmark::ClobberMemory();
  }
  set_counters<T>(state, kTile);
  state.SetLabel(longrope::isa_name(longrope::active_isa()));
}
BENCHMARK_TEMPLATE(BM_rotate_cached_free, float);
BENCHMARK_TEMPLATE(BM_rotate_cached_free, fp16);
BENCHMARK_TEMPLATE(BM_rotate_cached_free, bf16);

// ---------------------------------------------------------------------------
// Decode: one token at position 100,000, table-free, with a breakdown.

constexpr std::int64_t kDecodePos = 100000;

void set_decode_counters(benchmark::State& state) { set_counters<float>(state, 1); }

// The whole call: argument checks, angles, cos/sin, rotation of 40 heads.
// range(0): bytes q and k sit past a 64-byte boundary.
void decode_call(benchmark::State& state, pair_layout layout) {
  const auto f = bench_freqs(layout);
  qk_buffers<float> b(1, kDecodePos, static_cast<std::size_t>(state.range(0)));
  const auto q = b.qv();
  const auto k = b.kv();
  for (auto _ : state) {
    longrope::rotate_qk(f, q, k, b.pv(), {0, 1});
    benchmark::ClobberMemory();
  }
  set_decode_counters(state);
  state.SetLabel(longrope::isa_name(longrope::active_isa()));
}
void BM_decode(benchmark::State& state) {
  decode_call(state, pair_layout::half_split);
}
// The same on the interleaved layout (GPT-J, llama.cpp's "normal" rope).
void BM_decode_interleaved(benchmark::State& state) {
  decode_call(state, pair_layout::interleaved);
}

// Breakdown 1: the exact angles alone (p * f_i in double, reduced mod 2 pi), scalar.
void BM_decode_angles(benchmark::State& state) {
  const auto f = bench_freqs(pair_layout::half_split);
  double a[kPairs];
  for (auto _ : state) {
    for (int i = 0; i < kPairs; ++i) a[i] = longrope::detail::reduce_two_pi(f.angle(kDecodePos, i));
    benchmark::DoNotOptimize(a);
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(state.iterations() * kPairs);
}

// Breakdown 2: angles + reduction + cos/sin of the token as the library does it.
void BM_decode_trig(benchmark::State& state) {
  const auto f = bench_freqs(pair_layout::half_split);
  alignas(64) float c[kPairs];
  alignas(64) float s[kPairs];
  for (auto _ : state) {
    longrope::detail::token_coeffs_vector(f, kDecodePos, c, s);
    benchmark::DoNotOptimize(c);
    benchmark::DoNotOptimize(s);
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(state.iterations() * kPairs);
}

// Breakdown 3: the rotation alone (cos/sin from a one-row table).
void BM_decode_rotation(benchmark::State& state) {
  const auto f = bench_freqs(pair_layout::half_split);
  qk_buffers<float> b(1, kDecodePos);
  std::vector<float> c(kPairs), s(kPairs);
  const std::int64_t p = kDecodePos;
  longrope::fill_table<float>(f, &p, 1, {c.data(), 1, kPairs}, {s.data(), 1, kPairs});
  const longrope::rope_table table{{c.data(), 1, kPairs}, {s.data(), 1, kPairs}, kDecodePos};
  const auto q = b.qv();
  const auto k = b.kv();
  for (auto _ : state) {
    longrope::rotate_qk(f, table, q, k, b.pv(), {0, 1});
    benchmark::ClobberMemory();
  }
  set_decode_counters(state);
}

// Decode floor: one in-place read-and-write pass over the same q and k bytes
// (x *= 1) in 64-byte vectors (GCC/Clang vector extension: one zmm per step with
// AVX-512, two ymm with AVX2), with no coefficients and no call overhead.
// The decode bytes sit in L1, where the store width matters: the compiler's own
// vectorisation of the scalar loop picks 256-bit stores on AVX-512 parts
// (-mprefer-vector-width=256), which measured about 3x slower per byte than
// 512-bit ones on this project's Xeon VM and so would be no floor.
#if defined(__GNUC__) || defined(__clang__)
void BM_decode_floor(benchmark::State& state) {
  qk_buffers<float> b(1, kDecodePos);
  using v16 = float __attribute__((vector_size(64)));
  v16 one{};
  one += 1.0f;
  benchmark::DoNotOptimize(one);
  for (auto _ : state) {
    for (auto* buf : {&b.q, &b.k}) {
      float* p = buf->data();
      for (std::size_t i = 0; i + 16 <= buf->size(); i += 16) {
        v16 x;
        std::memcpy(&x, p + i, sizeof(x));
        x *= one;
        std::memcpy(p + i, &x, sizeof(x));
      }
    }
    benchmark::ClobberMemory();
  }
  set_decode_counters(state);
}
#endif

// Naive decode: float angles, std::cos/std::sin per element (per head and pair).
void BM_decode_naive(benchmark::State& state) {
  const auto f = bench_freqs(pair_layout::half_split);
  qk_buffers<float> b(1, kDecodePos);
  std::vector<float> inv(f.inv_freq().begin(), f.inv_freq().end());
  for (auto _ : state) {
    for (auto* buf : {&b.q, &b.k}) {
      const std::ptrdiff_t heads = buf == &b.q ? kQHeads : kKHeads;
      for (std::ptrdiff_t h = 0; h < heads; ++h) {
        float* v = buf->data() + h * kHeadDim;
        for (int i = 0; i < kPairs; ++i) {
          const float a = static_cast<float>(kDecodePos) * inv[static_cast<std::size_t>(i)];
          const float c = std::cos(a);
          const float s = std::sin(a);
          const float x0 = v[i];
          const float x1 = v[i + kPairs];
          v[i] = x0 * c - x1 * s;
          v[i + kPairs] = x0 * s + x1 * c;
        }
      }
    }
    benchmark::ClobberMemory();
  }
  set_decode_counters(state);
}

BENCHMARK(BM_decode)->ArgName("offset")->Arg(0)->Arg(16);
BENCHMARK(BM_decode_interleaved)->ArgName("offset")->Arg(0)->Arg(16);
BENCHMARK(BM_decode_angles);
BENCHMARK(BM_decode_trig);
BENCHMARK(BM_decode_rotation);
#if defined(__GNUC__) || defined(__clang__)
BENCHMARK(BM_decode_floor);
#endif
BENCHMARK(BM_decode_naive);

}  // namespace
