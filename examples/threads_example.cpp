// Splitting one rotation across threads: every longrope kernel takes a
// token_range, and disjoint ranges touch disjoint memory, so an engine hands
// each of its threads a slice. Here: the prefill of a llama-like layer
// (q [tokens][32][128] + k [tokens][8][128], LongRoPE, table-free) rotated once
// on one thread and once split over two std::threads; the results must be
// bitwise identical, and the two-thread run shows both cores at work (the CPU
// each half ran on is printed on Linux).
//
//   threads_example [tokens]     (default 4096)
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <vector>

#if defined(__linux__)
#include <sched.h>
#endif

#include <longrope/longrope.hpp>

namespace {

int current_cpu() {
#if defined(__linux__)
  return sched_getcpu();
#else
  return -1;
#endif
}

struct slice_report {
  longrope::token_range range;
  int cpu = -1;
  double ms = 0.0;
};

// Rotates q and k for `range` and records where and how long it ran.
void rotate_slice(const longrope::rope_frequencies& f, longrope::heads_view<float> q, longrope::heads_view<float> k,
                  longrope::positions_view pos, longrope::token_range range, slice_report& out) {
  const auto t0 = std::chrono::steady_clock::now();
  longrope::rotate_qk(f, q, k, pos, range);
  out.range = range;
  out.cpu = current_cpu();
  out.ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

int main(int argc, char** argv) {
  const std::ptrdiff_t tokens = argc > 1 ? std::atol(argv[1]) : 4096;
  if (tokens < 2) {
    std::fprintf(stderr, "threads_example: tokens must be >= 2\n");
    return 2;
  }
  const std::ptrdiff_t q_heads = 32, k_heads = 8, head_dim = 128;

  // Phi-3-style LongRoPE at a 131072 context (long factors 1..64).
  longrope::rope_config cfg;
  cfg.head_dim = 128;
  cfg.type = longrope::rope_type::longrope;
  cfg.max_position_embeddings = 131072;
  cfg.longrope.original_max_position = 4096;
  cfg.longrope.short_factor.assign(64, 1.0);
  cfg.longrope.long_factor.resize(64);
  for (int i = 0; i < 64; ++i) cfg.longrope.long_factor[static_cast<std::size_t>(i)] = 1.0 + 63.0 * i / 63.0;
  const longrope::rope_frequencies f(cfg, {131072});

  std::vector<float> q(static_cast<std::size_t>(tokens * q_heads * head_dim));
  std::vector<float> k(static_cast<std::size_t>(tokens * k_heads * head_dim));
  for (std::size_t i = 0; i < q.size(); ++i) q[i] = static_cast<float>(i % 97) * 0.01f - 0.48f;
  for (std::size_t i = 0; i < k.size(); ++i) k[i] = static_cast<float>(i % 89) * 0.01f - 0.44f;
  std::vector<std::int64_t> pos(static_cast<std::size_t>(tokens));
  for (std::ptrdiff_t t = 0; t < tokens; ++t) pos[static_cast<std::size_t>(t)] = 100000 + t;  // a late chunk
  const longrope::positions_view pv{pos.data(), 0};

  // Each variant rotates its own copy kRuns times (same sequence of rotations,
  // so the final buffers must agree bitwise); the fastest run is reported.
  constexpr int kRuns = 3;

  // One thread.
  std::vector<float> q1 = q, k1 = k;
  slice_report whole;
  whole.ms = 1e30;
  for (int run = 0; run < kRuns; ++run) {
    slice_report r;
    rotate_slice(f, longrope::token_major(q1.data(), 1, tokens, q_heads, head_dim),
                 longrope::token_major(k1.data(), 1, tokens, k_heads, head_dim), pv, {0, tokens}, r);
    if (r.ms < whole.ms) whole = r;
  }

  // Two threads: the token range split in halves; the kernels need no locking.
  std::vector<float> q2 = q, k2 = k;
  const auto qv = longrope::token_major(q2.data(), 1, tokens, q_heads, head_dim);
  const auto kv = longrope::token_major(k2.data(), 1, tokens, k_heads, head_dim);
  slice_report part[2];
  double two_ms = 1e30;
  const std::ptrdiff_t mid = tokens / 2;
  for (int run = 0; run < kRuns; ++run) {
    slice_report p[2];
    const auto t0 = std::chrono::steady_clock::now();
    std::thread worker([&] { rotate_slice(f, qv, kv, pv, {mid, tokens}, p[1]); });
    rotate_slice(f, qv, kv, pv, {0, mid}, p[0]);
    worker.join();
    const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    if (ms < two_ms) {
      two_ms = ms;
      part[0] = p[0];
      part[1] = p[1];
    }
  }

  const bool same = std::memcmp(q1.data(), q2.data(), q1.size() * sizeof(float)) == 0 &&
                    std::memcmp(k1.data(), k2.data(), k1.size() * sizeof(float)) == 0;
  std::printf("longrope threads example: %td tokens, q %td heads, k %td heads, head_dim %td, vector path %s\n", tokens,
              q_heads, k_heads, head_dim, longrope::isa_name(longrope::active_isa()));
  std::printf("hardware threads: %u\n", std::thread::hardware_concurrency());
  std::printf("best of %d runs each\n", kRuns);
  std::printf("1 thread : tokens [0, %td) on cpu %d: %.2f ms\n", tokens, whole.cpu, whole.ms);
  for (const auto& p : part) {
    std::printf("2 threads: tokens [%td, %td) on cpu %d: %.2f ms\n", p.range.begin, p.range.end, p.cpu, p.ms);
  }
  std::printf("2 threads: %.2f ms wall, speedup %.2fx (memory-bound: see docs/performance.md)\n", two_ms,
              whole.ms / two_ms);
  std::printf("results identical to the single-thread run: %s\n", same ? "yes" : "NO");
  return same ? 0 : 1;
}
