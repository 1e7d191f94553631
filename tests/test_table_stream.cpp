// Streamed (non-temporal) table fills: a float table of >= 8 MiB (cos + sin)
// goes through a stack block and streaming stores (detail/stream_store.hpp).
// The values must be bitwise those of small fills, which use plain stores,
// computed with the same blocks: the streamed fill may only change how the
// bytes reach memory. Checked on every ISA, for a position range that crosses
// n_hat (two recurrence segments), an explicit position list, a destination
// that is not 64-byte (or 32-byte) aligned, a row stride above the pair count,
// and with memory around the table left untouched.
#include <cstdint>
#include <cstring>
#include <vector>

#include <longrope/longrope.hpp>

#include "catch.hpp"

using namespace longrope;

namespace {

rope_frequencies stream_freqs() {
  rope_config c;
  c.head_dim = 96;  // 48 pairs, as the benchmark's Phi-3.5-like table
  c.type = rope_type::longrope;
  c.max_position_embeddings = 131072;
  c.longrope.original_max_position = 4096;
  c.longrope.short_factor.assign(48, 1.0);
  c.longrope.long_factor.resize(48);
  for (int i = 0; i < 48; ++i) c.longrope.long_factor[static_cast<std::size_t>(i)] = 1.0 + 63.0 * i / 47.0;
  c.longrope.attention_factor = 1.19;
  c.n_hat = 4096;  // theta below it: the range below splits into two recurrence segments
  return rope_frequencies(c, {131072});
}

std::vector<isa> stream_isas() {
  std::vector<isa> v{isa::scalar};
  for (isa i : {isa::avx2, isa::avx512, isa::neon}) {
    if (isa_supported(i)) v.push_back(i);
  }
  return v;
}

constexpr float kSentinel = -7.25f;

bool same_bits(const float* a, const float* b, std::size_t n) { return std::memcmp(a, b, n * sizeof(float)) == 0; }

}  // namespace

TEST_CASE("streamed fill_table (large tables) equals small fills bitwise", "[rotate][simd][table][stream]") {
  const rope_frequencies f = stream_freqs();
  const int n = f.pairs();
  REQUIRE(n == 48);
  // 22 000 rows x 48 pairs x 2 tables x 4 bytes = 8.06 MiB >= kStreamTableBytes.
  const std::ptrdiff_t rows = 22000;
  REQUIRE(2 * static_cast<std::size_t>(rows) * 48 * sizeof(float) >= detail::kStreamTableBytes);
  const std::int64_t p0 = 4096 - 1000 - 7;  // n_hat inside the range, not on a 32-row boundary
  REQUIRE(f.n_hat() == 4096);
  for (const isa which : stream_isas()) {
    set_isa(which);
    INFO("isa " << isa_name(which));
    REQUIRE(active_isa() == which);
    // AVX2 and AVX-512 stream; the scalar path (and NEON) must give the same bits with plain stores.
    CHECK(detail::table_streams(detail::isa_active(), rows, n) == (which == isa::avx2 || which == isa::avx512));
    for (const std::ptrdiff_t stride : {std::ptrdiff_t{48}, std::ptrdiff_t{53}}) {
      INFO("row stride " << stride);
      // One float past a 64-byte boundary: neither 16- nor 32-byte aligned rows.
      const std::size_t cells = static_cast<std::size_t>(rows * stride) + 32;
      std::vector<float> c(cells, kSentinel), s(cells, kSentinel);
      float* cd = c.data() + 1;
      float* sd = s.data() + 1;
      fill_table<float>(f, position_range{p0, p0 + rows}, {cd, rows, n, stride}, {sd, rows, n, stride});

      // The same rows from small fills (plain stores), blocks of 32 counted
      // from p0 below n_hat and from n_hat above, as the recurrence restarts.
      const std::int64_t split = f.n_hat() - p0;
      std::vector<float> rc(static_cast<std::size_t>(32 * n)), rs(rc.size());
      std::ptrdiff_t mismatched_rows = 0;
      auto check = [&](std::int64_t first, std::int64_t last) {
        for (std::int64_t b = first; b < last; b += 32) {
          const std::int64_t m = std::min<std::int64_t>(32, last - b);
          fill_table<float>(f, position_range{p0 + b, p0 + b + m}, {rc.data(), m, n}, {rs.data(), m, n});
          for (std::int64_t r = 0; r < m; ++r) {
            const auto at = static_cast<std::size_t>((b + r) * stride);
            if (!same_bits(cd + at, rc.data() + r * n, 48) || !same_bits(sd + at, rs.data() + r * n, 48)) {
              ++mismatched_rows;
            }
          }
        }
      };
      check(0, split);
      check(split, rows);
      CHECK(mismatched_rows == 0);

      // Padding columns, the float before and the cells after the table: untouched.
      std::ptrdiff_t touched = 0;
      if (c[0] != kSentinel || s[0] != kSentinel) ++touched;
      for (std::ptrdiff_t r = 0; r < rows; ++r) {
        for (std::ptrdiff_t k = n; k < stride; ++k) {
          if (cd[r * stride + k] != kSentinel || sd[r * stride + k] != kSentinel) ++touched;
        }
      }
      for (std::size_t k = static_cast<std::size_t>(rows * stride) + 1; k < cells; ++k) {
        if (c[k] != kSentinel || s[k] != kSentinel) ++touched;
      }
      CHECK(touched == 0);
    }

    // Explicit positions (any order): the streamed fill against one-row fills.
    std::vector<std::int64_t> pos(static_cast<std::size_t>(rows));
    for (std::size_t r = 0; r < pos.size(); ++r) pos[r] = static_cast<std::int64_t>((r * 7919) % 131072);
    std::vector<float> c(static_cast<std::size_t>(rows * n) + 8, kSentinel), s(c.size(), kSentinel);
    fill_table<float>(f, pos.data(), rows, {c.data() + 3, rows, n}, {s.data() + 3, rows, n});
    std::vector<float> one(static_cast<std::size_t>(n)), two(one.size());
    std::ptrdiff_t mismatched = 0;
    for (std::ptrdiff_t r = 0; r < rows; ++r) {
      fill_table<float>(f, pos.data() + r, 1, {one.data(), 1, n}, {two.data(), 1, n});
      const auto at = static_cast<std::size_t>(3 + r * n);
      if (!same_bits(c.data() + at, one.data(), 48) || !same_bits(s.data() + at, two.data(), 48)) ++mismatched;
    }
    CHECK(mismatched == 0);
    CHECK(c[2] == kSentinel);
    CHECK(c[static_cast<std::size_t>(3 + rows * n)] == kSentinel);
  }
  reset_isa();
}
