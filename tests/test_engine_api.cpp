// Engine-facing API points: owned_table (sizes, fills and hands out its views)
// and rope_frequencies construction without an allocation per factor.
// This binary replaces the global operator new to count allocations.
#include <cstdint>
#include <cstdlib>
#include <new>
#include <numeric>
#include <string>
#include <vector>

#include <longrope/longrope.hpp>
#include <longrope/owned_table.hpp>

#include "catch.hpp"

namespace {
long g_allocations = 0;
}  // namespace

// The replacements below pair malloc with free on purpose; GCC's builtin
// knowledge of operator new flags that as a mismatch.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif

// Every replaceable form, all on malloc/free, so no allocation escapes the count and
// (under AddressSanitizer) no pointer is freed by a different family than allocated it.
namespace {
void* counted(std::size_t n) noexcept {
  ++g_allocations;
  return std::malloc(n == 0 ? 1 : n);
}
void* counted_aligned(std::size_t n, std::align_val_t a) noexcept {
  ++g_allocations;
  const auto al = static_cast<std::size_t>(a);
  return std::aligned_alloc(al, (n + al - 1) / al * al + (n == 0 ? al : 0));
}
void* or_throw(void* p) {
  if (p == nullptr) throw std::bad_alloc();
  return p;
}
}  // namespace

void* operator new(std::size_t n) { return or_throw(counted(n)); }
void* operator new[](std::size_t n) { return or_throw(counted(n)); }
void* operator new(std::size_t n, const std::nothrow_t&) noexcept { return counted(n); }
void* operator new[](std::size_t n, const std::nothrow_t&) noexcept { return counted(n); }
void* operator new(std::size_t n, std::align_val_t a) { return or_throw(counted_aligned(n, a)); }
void* operator new[](std::size_t n, std::align_val_t a) { return or_throw(counted_aligned(n, a)); }
void* operator new(std::size_t n, std::align_val_t a, const std::nothrow_t&) noexcept { return counted_aligned(n, a); }
void* operator new[](std::size_t n, std::align_val_t a, const std::nothrow_t&) noexcept {
  return counted_aligned(n, a);
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete(void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }
void operator delete(void* p, std::align_val_t, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete[](void* p, std::align_val_t, const std::nothrow_t&) noexcept { std::free(p); }

using namespace longrope;

namespace {

rope_config longrope_config(int pairs) {
  rope_config c;
  c.head_dim = 2 * pairs;
  c.type = rope_type::longrope;
  c.max_position_embeddings = 131072;
  c.longrope.original_max_position = 4096;
  c.longrope.short_factor.assign(static_cast<std::size_t>(pairs), 1.0);
  c.longrope.long_factor.resize(static_cast<std::size_t>(pairs));
  for (int i = 0; i < pairs; ++i) c.longrope.long_factor[static_cast<std::size_t>(i)] = 1.0 + i;
  return c;
}

long allocations_of_construction(const rope_config& cfg) {
  const long before = g_allocations;
  const rope_frequencies f(cfg, {8192});
  const long n = g_allocations - before;
  REQUIRE(f.pairs() == cfg.pairs());
  return n;
}

}  // namespace

TEST_CASE("rope_frequencies construction allocates O(1) times, not once per factor", "[engine][frequencies]") {
  const long small = allocations_of_construction(longrope_config(16));
  const long large = allocations_of_construction(longrope_config(512));
  INFO("allocations: 16 pairs " << small << ", 512 pairs " << large);
  CHECK(small == large);
  CHECK(large <= 12);  // the config copy (2 factor vectors) and the 3 frequency vectors, a few temporaries
  // A bad factor still names its index.
  rope_config bad = longrope_config(16);
  bad.longrope.long_factor[7] = -1.0;
  try {
    (void)rope_frequencies(bad);
    FAIL("no error");
  } catch (const longrope::error& e) {
    CHECK(e.id() == "longrope.config");
    CHECK_THAT(e.what(), Catch::Contains("longrope.long_factor[7]"));
  }
}

TEST_CASE("owned_table sizes, fills and hands out fill_table's rows", "[engine][table]") {
  const rope_config cfg = longrope_config(48);
  const rope_frequencies f(cfg, {131072});
  const owned_table t(f, {100, 1124});
  REQUIRE(t.rows() == 1024);
  REQUIRE(t.pairs() == 48);
  CHECK(t.first_position() == 100);
  CHECK(t.row_stride() % 16 == 0);
  CHECK(reinterpret_cast<std::uintptr_t>(t.cos_view().data) % 64 == 0);
  CHECK(reinterpret_cast<std::uintptr_t>(t.sin_view().data) % 64 == 0);
  // The rows equal fill_table into caller memory.
  std::vector<float> c(1024 * 48), s(c.size());
  fill_table<float>(f, position_range{100, 1124}, {c.data(), 1024, 48}, {s.data(), 1024, 48});
  for (std::ptrdiff_t r = 0; r < 1024; ++r)
    for (int i = 0; i < 48; ++i) {
      REQUIRE(t.cos_view()(r, i) == c[static_cast<std::size_t>(r * 48 + i)]);
      REQUIRE(t.sin_view()(r, i) == s[static_cast<std::size_t>(r * 48 + i)]);
    }
  // Rotation through view() equals rotation through hand-built views.
  const std::ptrdiff_t n = 40;
  std::vector<float> q(static_cast<std::size_t>(n * 4 * 96)), k(static_cast<std::size_t>(n * 2 * 96));
  for (std::size_t i = 0; i < q.size(); ++i) q[i] = static_cast<float>(i % 13) - 6.0f;
  for (std::size_t i = 0; i < k.size(); ++i) k[i] = static_cast<float>(i % 7) - 3.0f;
  auto q2 = q, k2 = k;
  std::vector<std::int64_t> pos(static_cast<std::size_t>(n));
  std::iota(pos.begin(), pos.end(), 500);
  rotate_qk(f, t.view(), token_major(q.data(), 1, n, 4, 96), token_major(k.data(), 1, n, 2, 96), {pos.data(), 0},
            {0, n});
  const rope_table manual{{c.data(), 1024, 48}, {s.data(), 1024, 48}, 100};
  rotate_qk(f, manual, token_major(q2.data(), 1, n, 4, 96), token_major(k2.data(), 1, n, 2, 96), {pos.data(), 0},
            {0, n});
  CHECK(q == q2);
  CHECK(k == k2);
  // Positions outside the table are rejected by rotate.
  pos[3] = 99;
  CHECK_THROWS_AS(rotate_qk(f, t.view(), token_major(q.data(), 1, n, 4, 96), token_major(k.data(), 1, n, 2, 96),
                            {pos.data(), 0}, {0, n}),
                  longrope::error);
}

TEST_CASE("owned_table reuses its memory, copies, moves and rejects bad ranges", "[engine][table]") {
  const rope_frequencies f(longrope_config(48), {131072});
  const long a0 = g_allocations;
  owned_table t(f, {0, 4096});
  CHECK(g_allocations - a0 == 2);  // cos and sin, through the counted aligned operator new[]
  const std::size_t bytes = t.bytes();
  const float* data = t.cos_view().data;
  const long before = g_allocations;
  t.fill(f, {8000, 9000});  // fewer rows: no allocation (the aligned buffers are counted too)
  CHECK(g_allocations == before);
  CHECK(t.cos_view().data == data);
  CHECK(t.bytes() == bytes);
  CHECK(t.positions().begin == 8000);
  CHECK(t.positions().end == 9000);
  const owned_table copy = t;
  CHECK(copy.cos_view().data != t.cos_view().data);
  CHECK(copy.cos_view()(999, 47) == t.cos_view()(999, 47));
  owned_table moved = std::move(t);
  CHECK(moved.cos_view().data == data);
  CHECK(t.rows() == 0);  // NOLINT(bugprone-use-after-move): moved-from is empty by contract
  const owned_table empty(f, {5, 5});
  CHECK(empty.rows() == 0);
  auto expect = [&](position_range r, const std::string& what) {
    try {
      owned_table x(f, r);
      FAIL("no error for " << what);
    } catch (const longrope::error& e) {
      CHECK(e.id() == "longrope.argument");
      CHECK_THAT(e.what(), Catch::Contains(what));
    }
  };
  expect({-1, 10}, "invalid range");
  expect({10, 5}, "invalid range");
  expect({0, std::int64_t{1} << 62}, "2^29");
}
