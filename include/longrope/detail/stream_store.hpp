// longrope: header-only LongRoPE positional interpolation. MIT License.
#pragma once
#if !defined(LONGROPE_INTERNAL_INCLUDE)
#error "longrope/detail/stream_store.hpp is internal: include <longrope/table.hpp> or <longrope/longrope.hpp>"
#endif

// Non-temporal (streaming) copies for large table fills (table.hpp).
//
// A table larger than the last-level cache is written once and read later: a
// plain store first reads each destination line into the cache (read for
// ownership), so writing B bytes moves 2B over the memory bus. Streaming
// stores write whole lines through the write-combining buffers without that
// read. fill_table computes each block of rows into a small buffer on the
// stack (L1-resident, the same kernel, so the values are bitwise those of the
// direct path) and streams the block out with stream_copy_isa.
//
// stream_copy_isa copies count floats; the bytes before the first 64-byte
// boundary and after the last one use plain stores, so every streaming store
// belongs to a line that is written completely (a partly written
// write-combining line would be flushed as a slow partial write). After the
// last copy of a fill, stream_fence_isa (sfence) orders the streaming stores
// before any later store, so another thread that synchronises with the caller
// sees the table.

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "isa_select.hpp"
#include "simd.hpp"

namespace longrope::detail {

/// Output size (cos + sin bytes) from which fill_table streams its stores:
/// half the 16 MiB L3 of the machine the benchmarks run on. Below it the table
/// may still be in cache when the caller reads it, and plain stores keep it there.
inline constexpr std::size_t kStreamTableBytes = std::size_t{8} << 20;

#if defined(LONGROPE_KERNELS_AVX2)
LONGROPE_TARGET_AVX2_BEGIN
namespace avx2 {

/// dst[0, count) = src[0, count); src may have any alignment.
inline void stream_copy(float* dst, const float* src, std::size_t count) noexcept {
  const auto addr = reinterpret_cast<std::uintptr_t>(dst);
  // Floats before the first 64-byte boundary (dst is float-aligned: addr % 4 == 0).
  std::size_t head = ((64 - (addr & 63)) & 63) / sizeof(float);
  if ((addr & 3) != 0 || head >= count) {
    std::memcpy(dst, src, count * sizeof(float));
    return;
  }
  std::memcpy(dst, src, head * sizeof(float));
  std::size_t i = head;
  for (; i + 16 <= count; i += 16) {
    _mm256_stream_ps(dst + i, _mm256_loadu_ps(src + i));
    _mm256_stream_ps(dst + i + 8, _mm256_loadu_ps(src + i + 8));
  }
  std::memcpy(dst + i, src + i, (count - i) * sizeof(float));
}

inline void stream_fence() noexcept { _mm_sfence(); }

/// One streamed copy done a few lines at a time: start() writes the unaligned
/// head and tail with plain stores, step() streams the next 64-byte line.
struct stream_job {
  float* dst = nullptr;
  const float* src = nullptr;
  std::size_t pos = 0;
  std::size_t end = 0;

  void start(float* d, const float* s, std::size_t count) noexcept {
    dst = d;
    src = s;
    pos = end = 0;
    const auto addr = reinterpret_cast<std::uintptr_t>(d);
    const std::size_t head = ((64 - (addr & 63)) & 63) / sizeof(float);
    if ((addr & 3) != 0 || head >= count) {
      std::memcpy(d, s, count * sizeof(float));
      return;
    }
    const std::size_t body = (count - head) / 16 * 16;
    std::memcpy(d, s, head * sizeof(float));
    std::memcpy(d + head + body, s + head + body, (count - head - body) * sizeof(float));
    pos = head;
    end = head + body;
  }
  bool step() noexcept {
    if (pos >= end) return false;
    _mm256_stream_ps(dst + pos, _mm256_loadu_ps(src + pos));
    _mm256_stream_ps(dst + pos + 8, _mm256_loadu_ps(src + pos + 8));
    pos += 16;
    return true;
  }
};

/// The side job of fill_range_scaled in a streamed fill: the previous block's
/// cos and sin rows, `lines` lines per row the kernel writes, so the streaming
/// stores drain while the next block is computed (a block copied in one burst
/// stalls the core on the write-combining buffers for its whole length).
struct stream_side {
  stream_job c;
  stream_job s;
  int lines = 2;
  void step() noexcept {
    for (int k = 0; k < lines; ++k) {
      if (!c.step() && !s.step()) return;
    }
  }
  void finish() noexcept {
    while (c.step()) {
    }
    while (s.step()) {
    }
  }
};

/// Rows per block and the widest rows (pairs) of the interleaved streamed fill.
inline constexpr std::int64_t kStreamBlockRows = 32;  // = kRecurrenceRows: the direct path's bits
inline constexpr int kStreamBlockPairs = 64;

/// fill_range_scaled's rows for contiguous tables (row stride n <= 64),
/// computed block by block into the stack and streamed out while the next
/// block is computed; finish_block(cb, sb, m) runs on each block before it is
/// streamed (LongRoPE2's pair_mscale). Ends with sfence.
template <class FinishBlock>
inline void fill_range_streamed(const double* freq, std::int64_t p0, std::int64_t rows, double att, int n, float* c,
                                float* s, FinishBlock&& finish_block) noexcept {
  alignas(64) float buf[2][2][kStreamBlockRows * kStreamBlockPairs];
  alignas(32) double stepc[kStreamBlockPairs];
  alignas(32) double steps[kStreamBlockPairs];
  fill_steps(freq, n, stepc, steps);
  const __m256d vatt = _mm256_set1_pd(att);
  // Kernel rows per block: one per row per column group (16, 8 or 4 pairs).
  const std::int64_t kernel_rows = kStreamBlockRows * (n / 16 + (n % 16) / 8 + (n % 8 + 3) / 4);
  stream_side side;
  const auto un = static_cast<std::size_t>(n);
  int parity = 0;
  for (std::int64_t r0 = 0; r0 < rows; r0 += kStreamBlockRows, parity ^= 1) {
    const std::int64_t m = rows - r0 < kStreamBlockRows ? rows - r0 : kStreamBlockRows;
    float* cb = buf[parity][0];
    float* sb = buf[parity][1];
    fill_block(freq, stepc, steps, static_cast<double>(p0 + r0), m, vatt, n, cb, n, sb, n, side);
    side.finish();
    finish_block(cb, sb, m);
    const std::size_t count = static_cast<std::size_t>(m) * un;
    side.c.start(c + r0 * n, cb, count);
    side.s.start(s + r0 * n, sb, count);
    side.lines = static_cast<int>((2 * static_cast<std::int64_t>(count) / 16 + kernel_rows - 1) / kernel_rows);
  }
  side.finish();
  _mm_sfence();
}

}  // namespace avx2
LONGROPE_TARGET_END
#endif

/// Streams count floats from src to dst when the ISA has streaming stores
/// (AVX2 and AVX-512 machines), else returns false and copies nothing.
inline bool stream_copy_isa(int isa, float* dst, const float* src, std::size_t count) noexcept {
#if defined(LONGROPE_KERNELS_AVX2)
  if (isa == kIsaAvx2 || isa == kIsaAvx512) {
    avx2::stream_copy(dst, src, count);
    return true;
  }
#endif
  (void)isa, (void)dst, (void)src, (void)count;
  return false;
}

/// The interleaved streamed fill of contiguous rows (n <= kStreamBlockPairs)
/// where the ISA has it (AVX2); false: nothing written, use table_streamed.
template <class FinishBlock>
inline bool fill_range_streamed_isa(int isa, const double* freq, std::int64_t p0, std::int64_t rows, double att,
                                    int n, float* c, float* s, FinishBlock&& finish_block) noexcept {
#if defined(LONGROPE_KERNELS_AVX2)
  if (isa == kIsaAvx2 && n > 0 && n <= avx2::kStreamBlockPairs) {
    avx2::fill_range_streamed(freq, p0, rows, att, n, c, s, finish_block);
    return true;
  }
#endif
  (void)isa, (void)freq, (void)p0, (void)rows, (void)att, (void)n, (void)c, (void)s, (void)finish_block;
  return false;
}

/// Whether stream_copy_isa streams for this ISA.
inline bool stream_available(int isa) noexcept {
#if defined(LONGROPE_KERNELS_AVX2)
  return isa == kIsaAvx2 || isa == kIsaAvx512;
#else
  (void)isa;
  return false;
#endif
}

/// Orders the streaming stores before later stores (sfence).
inline void stream_fence_isa(int isa) noexcept {
#if defined(LONGROPE_KERNELS_AVX2)
  if (isa == kIsaAvx2 || isa == kIsaAvx512) avx2::stream_fence();
#endif
  (void)isa;
}

}  // namespace longrope::detail
