// Rotation kernels and vector cos/sin: every vector path against the scalar
// reference (every tail length, layout, stride pattern, storage type, q/k head
// count, in place and out of place, table and table-free), the scalar reference
// against an independent long-double formula, round trips, argument checks.
//
// Error bounds checked here (and documented in docs/performance.md):
//   cos/sin (fill_table float rows, table-free coefficients): vector vs scalar
//     reference <= 1 ulp of float; vs the long-double truth <= 2e-7 (att 1.19).
//   fill_table over a position range (recurrence): vector vs scalar reference
//     <= 1 ulp + 2^-51 |p f_i| att (the reference's own angle rounding); truth <= 2e-7.
//   rotation, per output channel of a pair (x0, x1), m = |x0| + |x1|:
//     |vector - scalar| <= 1e-6 * m * max(att, 1) + 1 ulp of the storage type at
//     the reference value (float, double: 0; half: 2^-10 |r| + 2^-24; bf16: 2^-7 |r| + 1.2e-38,
//     the float denormals that AVX512-BF16 conversion flushes to zero).
//   double storage: the vector path is the scalar reference (bitwise equal).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include <longrope/longrope.hpp>

#include "catch.hpp"

using namespace longrope;
using detail::kernel_path;

namespace {

// ---------------------------------------------------------------------------
// Configurations

rope_config longrope_config(int rotary_dim, int head_dim, pair_layout layout, std::int64_t n_hat = 3) {
  rope_config c;
  c.head_dim = head_dim;
  c.rotary_dim = rotary_dim;
  c.layout = layout;
  c.type = rope_type::longrope;
  c.max_position_embeddings = 131072;
  c.longrope.original_max_position = 4096;
  const int n = rotary_dim / 2;
  c.longrope.short_factor.assign(static_cast<std::size_t>(n), 1.0);
  c.longrope.long_factor.resize(static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) {
    c.longrope.long_factor[static_cast<std::size_t>(i)] = 1.0 + 31.0 * i / std::max(1, n - 1);
  }
  c.n_hat = n_hat;
  return c;
}

rope_frequencies make_freqs(int rotary_dim, int head_dim, pair_layout layout, std::int64_t n_hat = 3) {
  return rope_frequencies(longrope_config(rotary_dim, head_dim, layout, n_hat), {131072});
}

int ulp_distance(float a, float b) {
  if (a == b) return 0;
  if (std::isnan(a) || std::isnan(b)) return std::numeric_limits<int>::max();
  std::int32_t ia;
  std::int32_t ib;
  std::memcpy(&ia, &a, 4);
  std::memcpy(&ib, &b, 4);
  if (ia < 0) ia = std::numeric_limits<std::int32_t>::min() - ia;
  if (ib < 0) ib = std::numeric_limits<std::int32_t>::min() - ib;
  const std::int64_t d = static_cast<std::int64_t>(ia) - static_cast<std::int64_t>(ib);
  return static_cast<int>(d < 0 ? -d : d);
}

// ---------------------------------------------------------------------------
// Storage helpers

template <class T>
double to_d(T v) {
  return static_cast<double>(static_cast<float>(v));
}
template <>
double to_d<double>(double v) {
  return v;
}

template <class T>
T from_d(double v) {
  return static_cast<T>(static_cast<float>(v));
}
template <>
double from_d<double>(double v) {
  return v;
}

template <class T>
double storage_ulp(double r) {
  if constexpr (std::is_same_v<T, Eigen::half>) return std::ldexp(std::abs(r), -10) + std::ldexp(1.0, -24);
  // bf16: + the float denormal range, flushed by AVX512-BF16 conversions.
  if constexpr (std::is_same_v<T, Eigen::bfloat16>) return std::ldexp(std::abs(r), -7) + 1.2e-38;
  return 0.0;
}

template <class T>
const char* type_name() {
  if constexpr (std::is_same_v<T, float>) return "float";
  if constexpr (std::is_same_v<T, double>) return "double";
  if constexpr (std::is_same_v<T, Eigen::half>) return "half";
  return "bfloat16";
}

// A buffer with one view over it. The buffer is larger than the view (padding)
// and filled with a sentinel outside the view's elements.
enum class shape { token_major, head_major, padded };

template <class T>
struct buffer {
  std::vector<T> data;
  heads_view<T> view;
  buffer() = default;
  // Copies rebase the view onto the copy's own storage.
  buffer(const buffer& o) : data(o.data), view(o.view) { view.data = data.data() + (o.view.data - o.data.data()); }
  buffer& operator=(const buffer& o) {
    data = o.data;
    view = o.view;
    view.data = data.data() + (o.view.data - o.data.data());
    return *this;
  }
};

template <class T>
buffer<T> make_buffer(shape sh, std::ptrdiff_t batch, std::ptrdiff_t tokens, std::ptrdiff_t heads,
                      std::ptrdiff_t head_dim, std::mt19937& rng) {
  buffer<T> b;
  std::ptrdiff_t size = batch * tokens * heads * head_dim;
  if (sh == shape::token_major) {
    b.data.resize(static_cast<std::size_t>(size));
    b.view = token_major<T>(b.data.data(), batch, tokens, heads, head_dim);
  } else if (sh == shape::head_major) {
    b.data.resize(static_cast<std::size_t>(size));
    b.view = head_major<T>(b.data.data(), batch, heads, tokens, head_dim);
  } else {
    // [batch][tokens][heads][head_dim + 3], 5 spare elements per token, 7 per batch row.
    const std::ptrdiff_t hs = head_dim + 3;
    const std::ptrdiff_t ts = heads * hs + 5;
    const std::ptrdiff_t bs = tokens * ts + 7;
    size = batch * bs;
    b.data.resize(static_cast<std::size_t>(size));
    b.view = heads_view<T>{b.data.data(), batch, tokens, heads, head_dim, bs, ts, hs};
  }
  for (auto& v : b.data) v = from_d<T>(-77.0);  // sentinel
  std::uniform_real_distribution<double> u(-1.0, 1.0);
  for (std::ptrdiff_t bb = 0; bb < batch; ++bb) {
    for (std::ptrdiff_t t = 0; t < tokens; ++t) {
      for (std::ptrdiff_t h = 0; h < heads; ++h) {
        T* p = b.view.at(bb, t, h);
        for (std::ptrdiff_t j = 0; j < head_dim; ++j) p[j] = from_d<T>(u(rng));
      }
    }
  }
  return b;
}

// Pair partner of channel j (or -1 for pass-through channels).
std::ptrdiff_t partner(std::ptrdiff_t j, int n, pair_layout layout) {
  if (j >= 2 * n) return -1;
  if (layout == pair_layout::half_split) return j < n ? j + n : j - n;
  return j ^ 1;
}

// Compares every element of two buffers sharing a layout: view elements within
// the documented bound (pair magnitude taken from `input`), everything else
// (padding, tokens outside the range) bitwise equal.
template <class T>
void compare_buffers(const buffer<T>& input, const buffer<T>& ref, const buffer<T>& vec, int n,
                     pair_layout layout, double att, bool exact_expected) {
  REQUIRE(ref.data.size() == vec.data.size());
  std::vector<char> in_view(ref.data.size(), 0);
  const auto& v = ref.view;
  std::size_t bad = 0;
  for (std::ptrdiff_t b = 0; b < v.batch; ++b) {
    for (std::ptrdiff_t t = 0; t < v.tokens; ++t) {
      for (std::ptrdiff_t h = 0; h < v.heads; ++h) {
        const std::ptrdiff_t off = v.at(b, t, h) - v.data;
        for (std::ptrdiff_t j = 0; j < v.head_dim; ++j) {
          const auto idx = static_cast<std::size_t>(off + j);
          in_view[idx] = 1;
          const double r = to_d(ref.data[idx]);
          const double x = to_d(vec.data[idx]);
          const std::ptrdiff_t pj = partner(j, n, layout);
          double tol = 0.0;
          if (pj >= 0 && !exact_expected) {
            const double m = std::abs(to_d(input.data[idx])) +
                             std::abs(to_d(input.data[static_cast<std::size_t>(off + pj)]));
            tol = 1e-6 * m * std::max(att, 1.0) + storage_ulp<T>(r);
          }
          if (!(std::abs(r - x) <= tol)) {
            if (bad++ < 5) {
              UNSCOPED_INFO("b " << b << " t " << t << " h " << h << " j " << j << ": scalar " << r << " vector "
                                 << x << " tol " << tol);
            }
          }
        }
      }
    }
  }
  for (std::size_t i = 0; i < in_view.size(); ++i) {
    if (!in_view[i] && std::memcmp(&ref.data[i], &vec.data[i], sizeof(T)) != 0) ++bad;
  }
  CHECK(bad == 0);
}

// ---------------------------------------------------------------------------
// The long-double truth for one rotated channel pair.
void truth_pair(const rope_frequencies& f, std::int64_t p, int i, long double x0, long double x1,
                rotation_direction dir, long double& o0, long double& o1) {
  const long double a = static_cast<long double>(p) * static_cast<long double>(f.frequency(p, i));
  const long double att = f.attention_factor();
  long double c = std::cos(a);
  long double s = std::sin(a);
  if (dir == rotation_direction::forward) {
    o0 = att * (x0 * c - x1 * s);
    o1 = att * (x0 * s + x1 * c);
  } else {
    o0 = (x0 * c + x1 * s) / att;
    o1 = (-x0 * s + x1 * c) / att;
  }
}

const std::int64_t kBigPositions[] = {0, 1, 2, 3, 4, 7, 4095, 4096, 65535, 100000, 131071, 1048575, 2097151, 16777215};

// Every vector ISA this machine runs (the scalar preset: none, then the
// reference stands in); each [simd] test runs once per ISA through set_isa.
std::vector<isa> vector_isas() {
  std::vector<isa> v;
  for (isa i : {isa::avx2, isa::avx512, isa::neon}) {
    if (isa_supported(i)) v.push_back(i);
  }
  if (v.empty()) v.push_back(isa::scalar);
  return v;
}

template <class F>
void for_each_isa(F&& body) {
  for (const isa which : vector_isas()) {
    set_isa(which);
    INFO("isa " << isa_name(which));
    REQUIRE(active_isa() == which);
    body();
  }
  reset_isa();
}

}  // namespace

// ===========================================================================

static void simd_coeffs_body() {
  for (int rot = 2; rot <= 140; rot += 2) {
    const auto f = make_freqs(rot, rot, pair_layout::half_split, 0);
    const int n = f.pairs();
    std::vector<float> cr(static_cast<std::size_t>(n)), sr(cr.size()), cv(cr.size()), sv(cr.size());
    int worst = 0;
    for (std::int64_t p : kBigPositions) {
      detail::token_coeffs_scalar(f, p, cr.data(), sr.data());
      detail::token_coeffs_vector(f, p, cv.data(), sv.data());
      for (int i = 0; i < n; ++i) {
        worst = std::max(worst, ulp_distance(cr[static_cast<std::size_t>(i)], cv[static_cast<std::size_t>(i)]));
        worst = std::max(worst, ulp_distance(sr[static_cast<std::size_t>(i)], sv[static_cast<std::size_t>(i)]));
      }
    }
    INFO("rotary_dim " << rot);
    CHECK(worst <= 1);
  }
}

TEST_CASE("vector cos/sin matches the scalar reference at every tail length", "[rotate][simd]") {
  for_each_isa(simd_coeffs_body);
}

static void simd_table_rows_body() {
  for (int rot : {2, 4, 6, 14, 16, 18, 30, 32, 34, 46, 48, 50, 62, 64, 66, 96, 128, 130}) {
    const auto f = make_freqs(rot, rot, pair_layout::half_split, 5);
    const int n = f.pairs();
    std::vector<float> cr(static_cast<std::size_t>(n)), sr(cr.size()), cv(cr.size()), sv(cr.size());
    int worst_ulp = 0;
    double worst_abs = 0.0;
    for (std::int64_t p : kBigPositions) {
      detail::table_row_scalar(f, p, cr.data(), sr.data(), angle_precision::exact);
      detail::table_row_vector(f, p, cv.data(), sv.data(), angle_precision::exact);
      for (int i = 0; i < n; ++i) {
        const auto k = static_cast<std::size_t>(i);
        worst_ulp = std::max(worst_ulp, std::max(ulp_distance(cr[k], cv[k]), ulp_distance(sr[k], sv[k])));
        const long double a = static_cast<long double>(p) * static_cast<long double>(f.frequency(p, i));
        const long double att = f.attention_factor();
        worst_abs = std::max(worst_abs, static_cast<double>(std::abs(att * std::cos(a) - cv[k])));
        worst_abs = std::max(worst_abs, static_cast<double>(std::abs(att * std::sin(a) - sv[k])));
      }
    }
    INFO("rotary_dim " << rot << " attention factor " << f.attention_factor());
    CHECK(worst_ulp <= 1);
    CHECK(worst_abs <= 2e-7);
  }
  // The public entry point uses the vector row.
  const auto f = make_freqs(64, 64, pair_layout::half_split, 0);
  std::vector<float> c(3 * 32), s(3 * 32), cr(32), sr(32);
  const std::int64_t pos[] = {5, 100000, 16777215};
  fill_table<float>(f, pos, 3, {c.data(), 3, 32}, {s.data(), 3, 32});
  for (int r = 0; r < 3; ++r) {
    detail::table_row_scalar(f, pos[r], cr.data(), sr.data(), angle_precision::exact);
    for (int i = 0; i < 32; ++i) {
      CHECK(ulp_distance(c[static_cast<std::size_t>(r * 32 + i)], cr[static_cast<std::size_t>(i)]) <= 1);
      CHECK(ulp_distance(s[static_cast<std::size_t>(r * 32 + i)], sr[static_cast<std::size_t>(i)]) <= 1);
    }
  }
}

TEST_CASE("vector fill_table matches the scalar reference and the long-double truth", "[rotate][simd][table]") {
  for_each_isa(simd_table_rows_body);
}

static void simd_table_range_body() {
  // Every tail length of the pair vectors, ranges crossing n_hat, lengths that
  // are not multiples of the 32-row restart, large start positions, padded rows.
  struct range_case {
    std::int64_t begin;
    std::int64_t rows;
  };
  const range_case ranges[] = {{0, 1}, {0, 70}, {3, 33}, {131000, 71}, {16777215 - 64, 65}, {2097152 - 40, 40}};
  int outside = 0;
  double worst_abs = 0.0;
  for (int rot = 2; rot <= 140; rot += 2) {
    const auto f = make_freqs(rot, rot, pair_layout::half_split, 5);
    const int n = f.pairs();
    const std::ptrdiff_t stride = n + 3;
    std::vector<float> cr(static_cast<std::size_t>(n)), sr(cr.size());
    for (const auto& rc : ranges) {
      std::vector<float> c(static_cast<std::size_t>(rc.rows * stride), -9.0f), s(c.size(), -9.0f);
      fill_table<float>(f, position_range{rc.begin, rc.begin + rc.rows}, {c.data(), rc.rows, n, stride},
                        {s.data(), rc.rows, n, stride});
      for (std::int64_t r = 0; r < rc.rows; ++r) {
        const std::int64_t p = rc.begin + r;
        detail::table_row_scalar(f, p, cr.data(), sr.data(), angle_precision::exact);
        for (int i = 0; i < n; ++i) {
          const auto k = static_cast<std::size_t>(i);
          const auto at = static_cast<std::size_t>(r * stride + i);
          const long double a = static_cast<long double>(p) * static_cast<long double>(f.frequency(p, i));
          // The scalar reference rounds the angle p * f to double (|error| <= 2^-53 |a|);
          // the recurrence does not, so near a zero of cos/sin the two may differ by more
          // than 1 ulp of the (tiny) value: bound the difference by 1 ulp + 2^-51 |a| att.
          const double slack = std::ldexp(static_cast<double>(a), -51) * f.attention_factor();
          auto excess = [&](float ref, float got) {
            const double spacing = std::nextafter(std::abs(ref), 1e30f) - std::abs(ref);
            return std::abs(static_cast<double>(ref) - got) - spacing - slack;
          };
          if (excess(cr[k], c[at]) > 0 || excess(sr[k], s[at]) > 0) ++outside;
          const long double att = f.attention_factor();
          worst_abs = std::max(worst_abs, static_cast<double>(std::abs(att * std::cos(a) - c[at])));
          worst_abs = std::max(worst_abs, static_cast<double>(std::abs(att * std::sin(a) - s[at])));
        }
        for (std::ptrdiff_t i = n; i < stride; ++i) {  // row padding untouched
          CHECK(c[static_cast<std::size_t>(r * stride + i)] == -9.0f);
        }
      }
    }
  }
  CHECK(outside == 0);  // values beyond 1 ulp + the angle-rounding slack
  CHECK(worst_abs <= 2e-7);

  // More than 512 pairs: the range path falls back to one exact row at a time.
  const auto wide = make_freqs(1200, 1200, pair_layout::half_split, 0);
  std::vector<float> c(3 * 600), s(c.size()), cr(600), sr(600);
  fill_table<float>(wide, position_range{99999, 100002}, {c.data(), 3, 600}, {s.data(), 3, 600});
  int wide_worst = 0;
  for (int r = 0; r < 3; ++r) {
    detail::table_row_scalar(wide, 99999 + r, cr.data(), sr.data(), angle_precision::exact);
    for (std::size_t i = 0; i < 600; ++i) {
      wide_worst = std::max(wide_worst, ulp_distance(cr[i], c[static_cast<std::size_t>(r) * 600 + i]));
      wide_worst = std::max(wide_worst, ulp_distance(sr[i], s[static_cast<std::size_t>(r) * 600 + i]));
    }
  }
  CHECK(wide_worst <= 1);
}

TEST_CASE("fill_table over a position range (recurrence) matches the scalar reference", "[rotate][simd][table]") {
  for_each_isa(simd_table_range_body);
}

namespace {

template <class T>
void vector_vs_scalar_for_type() {
  std::mt19937 rng(1234);
  const std::ptrdiff_t batch = 2;
  const std::ptrdiff_t tokens = 3;
  const int q_heads = 3;
  const int k_heads = 1;
  // Every tail length up to 70, plus the pair counts with unrolled kernels (32, 48, 64).
  std::vector<int> rotary_dims;
  for (int rot = 2; rot <= 70; rot += 2) rotary_dims.push_back(rot);
  rotary_dims.push_back(96);
  rotary_dims.push_back(128);
  for (pair_layout layout : {pair_layout::half_split, pair_layout::interleaved}) {
    for (int rot : rotary_dims) {
      for (int extra : {0, 6}) {
        const int hd = rot + extra;
        const auto f = make_freqs(rot, hd, layout);
        const int n = f.pairs();
        // Positions: per batch row (row 1 packs a different sequence), or shared.
        std::vector<std::int64_t> pos = {0, 2, 100000, 16777215, 5, 131071};
        // A table covering [first, first + rows).
        const std::int64_t first = 2;
        const std::ptrdiff_t rows = 40;
        std::vector<float> tc(static_cast<std::size_t>(rows * n)), ts(tc.size());
        fill_table<float>(f, position_range{first, first + rows}, {tc.data(), rows, n}, {ts.data(), rows, n});
        const rope_table table{{tc.data(), rows, n}, {ts.data(), rows, n}, first};
        std::vector<std::int64_t> tpos = {2, 3, 41, 10, 11, 12};
        for (shape sh : {shape::token_major, shape::head_major, shape::padded}) {
          for (int mode = 0; mode < 4; ++mode) {
            // mode bit 0: out of place; bit 1: table.
            const bool oop = (mode & 1) != 0;
            const bool use_table = (mode & 2) != 0;
            const std::ptrdiff_t pbs = (sh == shape::padded) ? 0 : tokens;  // shared positions on padded
            const positions_view pv{use_table ? tpos.data() : pos.data(), pbs};
            const token_range range{sh == shape::head_major ? 1 : 0, tokens};
            const auto dir = (rot % 4 == 0 && sh == shape::padded) ? rotation_direction::inverse
                                                                   : rotation_direction::forward;
            auto q_in = make_buffer<T>(sh, batch, tokens, q_heads, hd, rng);
            auto k_in = make_buffer<T>(sh, batch, tokens, k_heads, hd, rng);
            auto q_ref = q_in, q_vec = q_in, k_ref = k_in, k_vec = k_in;
            auto run = [&](auto path_tag, buffer<T>& q, buffer<T>& k) {
              constexpr kernel_path P = decltype(path_tag)::value;
              const detail::table_ref tr{table.cos, table.sin, table.first_position};
              const detail::table_ref* tp = use_table ? &tr : nullptr;
              if (oop) {
                // Out of place: outputs in fresh copies of the sentinel-filled buffer.
                const detail::io_pair<T> kk{k_in.view, k.view};
                detail::rotate_entry<T, P>(f, tp, {q_in.view, q.view}, &kk, pv, range,
                                           dir == rotation_direction::inverse, "test");
              } else {
                const detail::io_pair<T> kk{k.view, k.view};
                detail::rotate_entry<T, P>(f, tp, {q.view, q.view}, &kk, pv, range,
                                           dir == rotation_direction::inverse, "test");
              }
            };
            if (oop) {
              // Out-of-place outputs start as garbage-free copies of the input.
              for (auto* b : {&q_ref, &q_vec, &k_ref, &k_vec}) {
                for (auto& v : b->data) v = from_d<T>(-55.0);
              }
            }
            run(std::integral_constant<kernel_path, kernel_path::scalar>{}, q_ref, k_ref);
            run(std::integral_constant<kernel_path, kernel_path::vector>{}, q_vec, k_vec);
            INFO(type_name<T>() << " layout " << static_cast<int>(layout) << " rotary_dim " << rot << " head_dim "
                                << hd << " shape " << static_cast<int>(sh) << " out_of_place " << oop << " table "
                                << use_table << " inverse " << (dir == rotation_direction::inverse));
            const bool exact = std::is_same_v<T, double>;
            const double att = f.attention_factor();
            compare_buffers(q_in, q_ref, q_vec, n, layout, att, exact);
            compare_buffers(k_in, k_ref, k_vec, n, layout, att, exact);
            // Pass-through channels are copied bitwise, tokens outside the range untouched (in place).
            if (!oop) {
              std::size_t bad = 0;
              for (std::ptrdiff_t b = 0; b < batch; ++b) {
                for (std::ptrdiff_t t = 0; t < tokens; ++t) {
                  for (std::ptrdiff_t h = 0; h < q_heads; ++h) {
                    const T* a = q_in.view.at(b, t, h);
                    const T* r = q_ref.view.at(b, t, h);
                    const std::ptrdiff_t from = (t < range.begin) ? 0 : 2 * n;
                    if (std::memcmp(a + from, r + from, static_cast<std::size_t>(hd - from) * sizeof(T)) != 0) ++bad;
                  }
                }
              }
              CHECK(bad == 0);
            } else {
              std::size_t bad = 0;
              for (std::ptrdiff_t b = 0; b < batch; ++b) {
                for (std::ptrdiff_t t = range.begin; t < tokens; ++t) {
                  const T* a = q_in.view.at(b, t, 0);
                  const T* r = q_vec.view.at(b, t, 0);
                  if (std::memcmp(a + 2 * n, r + 2 * n, static_cast<std::size_t>(hd - 2 * n) * sizeof(T)) != 0) ++bad;
                }
              }
              CHECK(bad == 0);
            }
          }
        }
      }
    }
  }
}

}  // namespace

TEST_CASE("vector rotation matches the scalar reference: float", "[rotate][simd]") {
  for_each_isa(vector_vs_scalar_for_type<float>);
}
TEST_CASE("vector rotation matches the scalar reference: double", "[rotate][simd]") {
  for_each_isa(vector_vs_scalar_for_type<double>);
}
TEST_CASE("vector rotation matches the scalar reference: half", "[rotate][simd]") {
  for_each_isa(vector_vs_scalar_for_type<Eigen::half>);
}
TEST_CASE("vector rotation matches the scalar reference: bfloat16", "[rotate][simd]") {
  for_each_isa(vector_vs_scalar_for_type<Eigen::bfloat16>);
}

TEST_CASE("scalar reference and public path match the long-double formula", "[rotate]") {
  for (pair_layout layout : {pair_layout::half_split, pair_layout::interleaved}) {
    for (auto dir : {rotation_direction::forward, rotation_direction::inverse}) {
      const auto f = make_freqs(48, 64, layout, 4);
      REQUIRE(f.attention_factor() > 1.1);
      const int n = f.pairs();
      const std::ptrdiff_t tokens = 6;
      std::vector<std::int64_t> pos = {0, 3, 4, 4095, 100000, 16777215};
      std::mt19937 rng(7);
      auto x = make_buffer<float>(shape::token_major, 1, tokens, 2, 64, rng);
      auto y = x;
      rotate(f, y.view, {pos.data(), 0}, {0, tokens}, dir);
      double worst = 0.0;
      for (std::ptrdiff_t t = 0; t < tokens; ++t) {
        for (std::ptrdiff_t h = 0; h < 2; ++h) {
          const float* a = x.view.at(0, t, h);
          const float* b = y.view.at(0, t, h);
          for (int i = 0; i < n; ++i) {
            const int j0 = layout == pair_layout::half_split ? i : 2 * i;
            const int j1 = layout == pair_layout::half_split ? i + n : 2 * i + 1;
            long double o0;
            long double o1;
            truth_pair(f, pos[static_cast<std::size_t>(t)], i, a[j0], a[j1], dir, o0, o1);
            worst = std::max(worst, static_cast<double>(std::abs(o0 - b[j0])));
            worst = std::max(worst, static_cast<double>(std::abs(o1 - b[j1])));
          }
          for (int j = 2 * n; j < 64; ++j) CHECK(a[j] == b[j]);
        }
      }
      INFO("layout " << static_cast<int>(layout) << " inverse " << (dir == rotation_direction::inverse));
      CHECK(worst < 1e-6);  // inputs in [-1, 1], att 1.19: a few float roundings
    }
  }
}

TEST_CASE("forward then inverse round-trips; norms scale by the attention factor", "[rotate]") {
  for (pair_layout layout : {pair_layout::half_split, pair_layout::interleaved}) {
    const auto f = make_freqs(32, 40, layout, 0);
    const double att = f.attention_factor();
    std::vector<std::int64_t> pos = {7, 100000, 2097151};
    std::mt19937 rng(3);
    auto x = make_buffer<float>(shape::head_major, 1, 3, 4, 40, rng);
    auto y = x;
    rotate(f, y.view, {pos.data(), 0}, {0, 3});
    for (std::ptrdiff_t t = 0; t < 3; ++t) {
      const float* a = x.view.at(0, t, 1);
      const float* b = y.view.at(0, t, 1);
      double na = 0, nb = 0;
      for (int j = 0; j < 32; ++j) {
        na += double(a[j]) * a[j];
        nb += double(b[j]) * b[j];
      }
      CHECK(std::sqrt(nb) == Approx(att * std::sqrt(na)).epsilon(1e-6));
    }
    rotate(f, y.view, {pos.data(), 0}, {0, 3}, rotation_direction::inverse);
    double worst = 0.0;
    for (std::size_t i = 0; i < x.data.size(); ++i) worst = std::max(worst, double(std::abs(x.data[i] - y.data[i])));
    CHECK(worst < 2e-6);
  }
}

TEST_CASE("relative-position invariance of q.k", "[rotate]") {
  const auto f = make_freqs(64, 64, pair_layout::half_split, 0);
  std::vector<float> q0(64), k0(64);
  std::mt19937 rng(11);
  std::uniform_real_distribution<float> u(-1, 1);
  for (auto& v : q0) v = u(rng);
  for (auto& v : k0) v = u(rng);
  auto dot_at = [&](std::int64_t m, std::int64_t nn) {
    std::vector<float> q = q0, k = k0;
    const std::int64_t pm[] = {m};
    const std::int64_t pn[] = {nn};
    rotate(f, token_major(q.data(), 1, 1, 1, 64), {pm, 0}, {0, 1});
    rotate(f, token_major(k.data(), 1, 1, 1, 64), {pn, 0}, {0, 1});
    double d = 0;
    for (int j = 0; j < 64; ++j) d += double(q[static_cast<std::size_t>(j)]) * k[static_cast<std::size_t>(j)];
    return d;
  };
  const double d1 = dot_at(10, 3);
  CHECK(dot_at(100010, 100003) == Approx(d1).margin(1e-4));
  CHECK(dot_at(1000010, 1000003) == Approx(d1).margin(1e-4));
}

TEST_CASE("table path equals table-free; rotate_qk equals separate calls; split ranges equal one call", "[rotate]") {
  const auto f = make_freqs(64, 64, pair_layout::interleaved, 2);
  const std::ptrdiff_t T = 9;
  std::vector<std::int64_t> pos(T);
  for (std::ptrdiff_t t = 0; t < T; ++t) pos[static_cast<std::size_t>(t)] = 100 + 3 * t;
  std::vector<float> tc(32 * 200), ts(tc.size());
  fill_table<float>(f, position_range{50, 250}, {tc.data(), 200, 32}, {ts.data(), 200, 32});
  const rope_table table{{tc.data(), 200, 32}, {ts.data(), 200, 32}, 50};
  std::mt19937 rng(5);
  auto q = make_buffer<float>(shape::token_major, 1, T, 4, 64, rng);
  auto k = make_buffer<float>(shape::token_major, 1, T, 2, 64, rng);
  auto q1 = q, k1 = k, q2 = q, k2 = k, q3 = q, k3 = k;
  const positions_view pv{pos.data(), 0};
  rotate_qk(f, q1.view, k1.view, pv, {0, T});
  rotate(f, table, q2.view, pv, {0, T});
  rotate(f, table, k2.view, pv, {0, T});
  rotate_qk(f, table, q3.view, k3.view, pv, {0, 4});
  rotate_qk(f, table, q3.view, k3.view, pv, {4, T});
  for (std::size_t i = 0; i < q.data.size(); ++i) {
    CHECK(q1.data[i] == Approx(q2.data[i]).margin(1e-6));
    CHECK(q2.data[i] == q3.data[i]);
  }
  for (std::size_t i = 0; i < k.data.size(); ++i) {
    CHECK(k1.data[i] == Approx(k2.data[i]).margin(1e-6));
    CHECK(k2.data[i] == k3.data[i]);
  }
  // Out of place equals in place.
  std::vector<float> qo(q.data.size()), ko(k.data.size());
  rotate_qk<float>(f, q.view, token_major(qo.data(), 1, T, 4, 64), k.view, token_major(ko.data(), 1, T, 2, 64), pv,
                   {0, T});
  CHECK(qo == q1.data);
  CHECK(ko == k1.data);
  std::vector<float> qo2(q.data.size());
  rotate<float>(f, table, q.view, token_major(qo2.data(), 1, T, 4, 64), pv, {0, T});
  CHECK(qo2 == q2.data);
  // A table with padded rows (row_stride 40 > 32 pairs) gives the same result.
  std::vector<float> pc(40 * 200, 5.0f), ps(pc.size(), 5.0f);
  fill_table<float>(f, position_range{50, 250}, {pc.data(), 200, 32, 40}, {ps.data(), 200, 32, 40});
  const rope_table padded{{pc.data(), 200, 32, 40}, {ps.data(), 200, 32, 40}, 50};
  std::vector<float> qo3(q.data.size());
  rotate<float>(f, padded, q.view, token_major(qo3.data(), 1, T, 4, 64), pv, {0, T});
  CHECK(qo3 == q2.data);
}

namespace {
template <class F>
std::string error_id(F&& fn) {
  try {
    fn();
  } catch (const longrope::error& e) {
    UNSCOPED_INFO(e.what());
    return e.id();
  }
  return "no error";
}
}  // namespace

TEST_CASE("argument errors are reported before any element is touched", "[rotate][errors]") {
  const auto f = make_freqs(8, 12, pair_layout::half_split, 0);
  std::vector<float> q(2 * 4 * 3 * 12, 1.0f), k(2 * 4 * 1 * 12, 1.0f);
  const auto q0 = q;
  std::vector<std::int64_t> pos = {0, 1, 2, 3, 4, 5, 6, 7};
  auto qv = token_major(q.data(), 2, 4, 3, 12);
  const positions_view pv{pos.data(), 4};
  const std::string arg = "longrope.argument";

  CHECK(error_id([&] { rotate(f, token_major(q.data(), 2, 4, 3, 10), pv, {0, 4}); }) == arg);  // head_dim
  CHECK(error_id([&] { rotate(f, qv, pv, {0, 5}); }) == arg);                                  // range end
  CHECK(error_id([&] { rotate(f, qv, pv, {-1, 2}); }) == arg);                                 // range begin
  CHECK(error_id([&] { rotate(f, qv, pv, {3, 2}); }) == arg);                                  // reversed
  CHECK(error_id([&] { rotate(f, qv, positions_view{nullptr, 0}, {0, 4}); }) == arg);          // null positions
  CHECK(error_id([&] { rotate(f, heads_view<float>{nullptr, 2, 4, 3, 12, 144, 36, 12}, pv, {0, 4}); }) == arg);
  CHECK(error_id([&] { rotate(f, heads_view<float>{q.data(), 2, 4, 3, 12, 144, -36, 12}, pv, {0, 4}); }) == arg);
  std::vector<std::int64_t> neg = pos;
  neg[6] = -1;  // batch row 1, token 2
  CHECK(error_id([&] { rotate(f, qv, positions_view{neg.data(), 4}, {0, 4}); }) == arg);
  std::vector<std::int64_t> huge = pos;
  huge[5] = std::int64_t{1} << 51;  // angle 2^51 rad for theta_0 = 1: past the reductions' range
  CHECK(error_id([&] { rotate(f, qv, positions_view{huge.data(), 4}, {0, 4}); }) == arg);
  CHECK(error_id([&] { rotate_qk(f, qv, token_major(k.data(), 2, 3, 1, 12), pv, {0, 3}); }) == arg);  // tokens
  std::vector<float> out(q.size());
  CHECK(error_id([&] { rotate<float>(f, qv, token_major(out.data(), 2, 4, 2, 12), pv, {0, 4}); }) == arg);
  // Tables: coverage, columns, rows.
  std::vector<float> tc(4 * 10), ts(tc.size());
  fill_table<float>(f, position_range{1, 11}, {tc.data(), 10, 4}, {ts.data(), 10, 4});
  const rope_table table{{tc.data(), 10, 4}, {ts.data(), 10, 4}, 1};
  CHECK(error_id([&] { rotate(f, table, qv, pv, {0, 4}); }) == arg);  // position 0 < first_position 1
  CHECK(error_id([&] { rotate(f, table, qv, pv, {1, 4}); }) == "no error");
  std::vector<std::int64_t> far = {1, 2, 3, 10, 1, 2, 3, 11};
  CHECK(error_id([&] { rotate(f, table, qv, positions_view{far.data(), 4}, {0, 4}); }) == arg);  // 11 past end
  const rope_table narrow{{tc.data(), 10, 3, 4}, {ts.data(), 10, 3, 4}, 1};
  CHECK(error_id([&] { rotate(f, narrow, qv, pv, {1, 4}); }) == arg);
  const rope_table uneven{{tc.data(), 10, 4}, {ts.data(), 9, 4}, 1};
  CHECK(error_id([&] { rotate(f, uneven, qv, pv, {1, 4}); }) == arg);
  // Too many pairs for the stack scratch.
  const auto big = make_freqs(1026, 1026, pair_layout::half_split, 0);
  std::vector<float> wide(1026, 0.5f);
  CHECK(error_id([&] { rotate(big, token_major(wide.data(), 1, 1, 1, 1026), pv, {0, 1}); }) == arg);
  // Nothing was touched by the failed calls except the one valid call above.
  auto qcheck = q0;
  rotate(f, table, token_major(qcheck.data(), 2, 4, 3, 12), pv, {1, 4});
  CHECK(q == qcheck);
  // Empty ranges are fine and touch nothing.
  CHECK(error_id([&] { rotate(f, qv, positions_view{nullptr, 0}, {2, 2}); }) == "no error");
}

TEST_CASE("int32 positions rotate exactly as int64 ones, on every ISA", "[rotate][positions]") {
  for_each_isa([] {
    for (pair_layout layout : {pair_layout::half_split, pair_layout::interleaved}) {
      const auto f = make_freqs(64, 64, layout, 4096);
      // The largest position is the bound of angles below 2^29 rad (theta_0 = 1 rad per token).
      const std::int64_t p64[] = {0, 1, 4095, 4096, 100000, (std::int64_t{1} << 29) - 1};
      std::int32_t p32[6];
      for (int i = 0; i < 6; ++i) p32[i] = static_cast<std::int32_t>(p64[i]);
      std::mt19937 rng(7);
      std::uniform_real_distribution<float> u(-1.0f, 1.0f);
      std::vector<float> q(2 * 3 * 4 * 64), k(2 * 3 * 2 * 64);
      for (auto& v : q) v = u(rng);
      for (auto& v : k) v = u(rng);
      auto q32 = q, k32 = k;
      rotate_qk(f, token_major(q.data(), 2, 3, 4, 64), token_major(k.data(), 2, 3, 2, 64), positions_view{p64, 3},
                {0, 3});
      rotate_qk(f, token_major(q32.data(), 2, 3, 4, 64), token_major(k32.data(), 2, 3, 2, 64), positions_view{p32, 3},
                {0, 3});
      CHECK(q32 == q);
      CHECK(k32 == k);
      // A table indexed by int32 positions.
      std::vector<float> tc(8 * 32), ts(8 * 32);
      fill_table<float>(f, position_range{4090, 4098}, {tc.data(), 8, 32}, {ts.data(), 8, 32});
      const rope_table table{{tc.data(), 8, 32}, {ts.data(), 8, 32}, 4090};
      const std::int64_t t64[] = {4090, 4095, 4096, 4097};
      const std::int32_t t32[] = {4090, 4095, 4096, 4097};
      auto a = q, b = q;
      rotate(f, table, token_major(a.data(), 1, 4, 4, 64), positions_view{t64, 0}, {0, 4});
      rotate(f, table, token_major(b.data(), 1, 4, 4, 64), positions_view{t32, 0}, {0, 4});
      CHECK(a == b);
    }
  });
  // Checks read int32 positions too.
  const auto f = make_freqs(64, 64, pair_layout::half_split);
  std::vector<float> x(64);
  const std::int32_t neg[] = {-1};
  try {
    rotate(f, token_major(x.data(), 1, 1, 1, 64), positions_view{neg, 0}, {0, 1});
    FAIL("negative int32 position accepted");
  } catch (const error& e) {
    CHECK(std::string(e.id()) == "longrope.argument");
  }
}

TEST_CASE("decode split by heads (head_range) equals the whole call", "[rotate][threads]") {
  const auto f = make_freqs(128, 128, pair_layout::half_split, 4096);
  std::mt19937 rng(9);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  std::vector<float> q(32 * 128), k(8 * 128);
  for (auto& v : q) v = u(rng);
  for (auto& v : k) v = u(rng);
  auto q2 = q, k2 = k;
  const std::int64_t p[] = {100000};
  const auto qv = token_major(q.data(), 1, 1, 32, 128);
  const auto kv = token_major(k.data(), 1, 1, 8, 128);
  rotate_qk(f, qv, kv, {p, 0}, {0, 1});
  const auto qv2 = token_major(q2.data(), 1, 1, 32, 128);
  const auto kv2 = token_major(k2.data(), 1, 1, 8, 128);
  // Two "threads": heads [0, 20) of q with [0, 4) of k, then the rest.
  rotate_qk(f, qv2.head_range(0, 20), kv2.head_range(0, 4), {p, 0}, {0, 1});
  rotate_qk(f, qv2.head_range(20, 32), kv2.head_range(4, 8), {p, 0}, {0, 1});
  CHECK(q2 == q);
  CHECK(k2 == k);
  CHECK(qv2.head_range(32, 32).heads == 0);
  for (auto bad : {std::pair<std::ptrdiff_t, std::ptrdiff_t>{-1, 2}, {3, 2}, {0, 33}}) {
    try {
      (void)qv2.head_range(bad.first, bad.second);
      FAIL("bad head range accepted");
    } catch (const error& e) {
      CHECK(std::string(e.id()) == "longrope.argument");
    }
  }
}

// Decode buffers at every float offset from a 64-byte boundary (AVX-512 rotates
// those in blocks aligned to the output, rotate_avx512.inc) against the same
// rotation of a 64-byte-aligned copy: bitwise equal, and no float outside the
// buffer read into the result or written.
TEST_CASE("decode at every offset from a 64-byte boundary equals the aligned call bitwise",
          "[rotate][simd][align]") {
  for_each_isa([] {
    std::mt19937 rng(11);
    std::uniform_real_distribution<float> u(-1.0f, 1.0f);
    constexpr float kGuard = 12345.0f;
    constexpr std::ptrdiff_t kPad = 48;  // guard floats on each side
    for (pair_layout layout : {pair_layout::half_split, pair_layout::interleaved}) {
      for (int hd : {64, 96, 128}) {
        const auto f = make_freqs(hd, hd, layout, 0);
        std::vector<float> tc(hd / 2), ts(hd / 2);
        const std::int64_t p[] = {100000};
        fill_table<float>(f, p, 1, {tc.data(), 1, hd / 2}, {ts.data(), 1, hd / 2});
        const rope_table table{{tc.data(), 1, hd / 2}, {ts.data(), 1, hd / 2}, 100000};
        auto in_place = [&](const heads_view<float>& v, int mode) {  // mode 1: from the table
          if (mode == 1) {
            rotate(f, table, v, {p, 0}, {0, 1});
          } else {
            rotate(f, v, {p, 0}, {0, 1});
          }
        };
        for (std::ptrdiff_t heads : {1, 3, 40}) {
          const std::ptrdiff_t n = heads * hd;
          std::vector<float> src(static_cast<std::size_t>(n));
          for (auto& v : src) v = u(rng);
          // kGuard-filled storage for n floats at a 64-byte boundary + kPad + off.
          auto guarded = [&](std::vector<float>& store, int off) {
            store.assign(static_cast<std::size_t>(n + 2 * kPad + 16), kGuard);
            float* base = store.data();
            while (reinterpret_cast<std::uintptr_t>(base) % 64 != 0) ++base;
            return base + kPad + off;
          };
          // The reference: a 64-byte-aligned copy, in place.
          std::vector<float> ref_store;
          float* ref = guarded(ref_store, 0);
          for (int mode = 0; mode < 3; ++mode) {  // 0 table-free in place, 1 table in place, 2 out of place
            std::copy(src.begin(), src.end(), ref);
            in_place(token_major(ref, 1, 1, heads, hd), mode);
            for (int off = 0; off < 16; ++off) {
              INFO("layout " << static_cast<int>(layout) << " head_dim " << hd << " heads " << heads
                             << " mode " << mode << " offset " << off << " floats");
              std::vector<float> store;
              float* x = guarded(store, off);  // off floats past a 64-byte boundary
              std::vector<float> in_store;
              if (mode == 2) {
                float* in = guarded(in_store, 15 - off);  // the input at another offset
                std::copy(src.begin(), src.end(), in);
                rotate(f, heads_view<const float>(token_major(in, 1, 1, heads, hd)),
                       token_major(x, 1, 1, heads, hd), {p, 0}, {0, 1});
                CHECK(std::equal(src.begin(), src.end(), in));  // the input is not written
              } else {
                std::copy(src.begin(), src.end(), x);
                in_place(token_major(x, 1, 1, heads, hd), mode);
              }
              std::ptrdiff_t diff = 0;
              for (std::ptrdiff_t i = 0; i < n; ++i) diff += std::memcmp(&x[i], &ref[i], sizeof(float)) != 0;
              CHECK(diff == 0);
              std::ptrdiff_t touched = 0;
              for (float* g = store.data(); g < x; ++g) touched += *g != kGuard;
              for (float* g = x + n; g < store.data() + store.size(); ++g) touched += *g != kGuard;
              CHECK(touched == 0);
            }
          }
        }
      }
    }
  });
}

TEST_CASE("ISA selection: set_isa, reset_isa, unsupported requests", "[rotate][isa]") {
  const isa before = active_isa();
  CHECK(isa_supported(isa::scalar));
  CHECK(isa_supported(best_isa()));
  set_isa(isa::scalar);
  CHECK(active_isa() == isa::scalar);
  reset_isa();
  CHECK(active_isa() == before);
  for (isa i : {isa::avx2, isa::avx512, isa::neon}) {
    if (isa_supported(i)) continue;
    try {
      set_isa(i);
      FAIL("unsupported ISA accepted");
    } catch (const error& e) {
      CHECK(std::string(e.id()) == "longrope.argument");
    }
    CHECK(active_isa() == before);
  }
#if defined(LONGROPE_FORCE_SCALAR)
  CHECK(best_isa() == isa::scalar);
#endif
  // ctest test_rotate_env_scalar runs this case under LONGROPE_ISA=scalar.
  const char* env = std::getenv("LONGROPE_ISA");
  if (env != nullptr && std::string(env) == "scalar") {
    CHECK(before == isa::scalar);
    // The public call then equals the reference loop bitwise.
    const auto f = make_freqs(64, 64, pair_layout::interleaved, 4096);
    std::vector<float> a(3 * 64), b(3 * 64);
    for (std::size_t i = 0; i < a.size(); ++i) a[i] = b[i] = static_cast<float>(i % 17) * 0.1f - 0.8f;
    const std::int64_t p[] = {100000};
    rotate(f, token_major(a.data(), 1, 1, 3, 64), {p, 0}, {0, 1});
    const detail::io_pair<float> io{token_major(b.data(), 1, 1, 3, 64), token_major(b.data(), 1, 1, 3, 64)};
    detail::rotate_entry<float, kernel_path::scalar>(f, nullptr, io, nullptr, {p, 0}, {0, 1}, false, "test");
    CHECK(a == b);
  }
}

TEST_CASE("table-free q/k over batch rows and a token sub-range match the long-double formula", "[rotate][simd]") {
  // The token loop computes each next token's cos/sin while the current one
  // rotates, across batch-row boundaries: check every (b, t) against the truth.
  for_each_isa([] {
    for (pair_layout layout : {pair_layout::half_split, pair_layout::interleaved}) {
      for (auto dir : {rotation_direction::forward, rotation_direction::inverse}) {
        const auto f = make_freqs(64, 64, layout, 4);
        const int n = f.pairs();
        const std::ptrdiff_t batch = 3;
        const std::ptrdiff_t tokens = 4;
        const std::vector<std::int64_t> pos = {0, 5, 4095, 4096, 7, 100000, 3, 9, 131071, 2, 16777215, 12};
        std::mt19937 rng(11);
        auto q = make_buffer<float>(shape::token_major, batch, tokens, 3, 64, rng);
        auto k = make_buffer<float>(shape::token_major, batch, tokens, 1, 64, rng);
        auto q2 = q, k2 = k;
        rotate_qk(f, q2.view, k2.view, {pos.data(), tokens}, {1, 3}, dir);
        double worst = 0.0;
        std::size_t untouched_bad = 0;
        for (auto* pr : {&q, &k}) {
          const auto& in = *pr;
          const auto& out = pr == &q ? q2 : k2;
          for (std::ptrdiff_t b = 0; b < batch; ++b) {
            for (std::ptrdiff_t t = 0; t < tokens; ++t) {
              for (std::ptrdiff_t h = 0; h < in.view.heads; ++h) {
                const float* a = in.view.at(b, t, h);
                const float* o = out.view.at(b, t, h);
                if (t < 1 || t >= 3) {
                  if (std::memcmp(a, o, 64 * sizeof(float)) != 0) ++untouched_bad;
                  continue;
                }
                for (int i = 0; i < n; ++i) {
                  const int j0 = layout == pair_layout::half_split ? i : 2 * i;
                  const int j1 = layout == pair_layout::half_split ? i + n : 2 * i + 1;
                  long double o0;
                  long double o1;
                  truth_pair(f, pos[static_cast<std::size_t>(b * tokens + t)], i, a[j0], a[j1], dir, o0, o1);
                  worst = std::max(worst, static_cast<double>(std::abs(o0 - o[j0])));
                  worst = std::max(worst, static_cast<double>(std::abs(o1 - o[j1])));
                }
              }
            }
          }
        }
        INFO("layout " << static_cast<int>(layout) << " inverse " << (dir == rotation_direction::inverse));
        CHECK(untouched_bad == 0);
        CHECK(worst < 1e-6);
      }
    }
  });
}

TEST_CASE("16-bit stores round to nearest even as Eigen's conversions (ties, specials, denormals)", "[rotate][simd]") {
  // Position 0: c = attention factor = 1.5, s = 0, so each output is x * 1.5
  // (exact in float for a 16-bit x) and the only rounding is the store. With
  // 1.5, about one output in four is an exact tie between two bf16 values
  // (both parities of the kept bit), which round-half-up or truncation would
  // get wrong; NaN/Inf/denormal inputs check the special cases. The scalar
  // reference converts with Eigen::bfloat16(float) / Eigen::half(float).
  auto body = [](auto tag) {
    using T = decltype(tag);
    for (pair_layout layout : {pair_layout::half_split, pair_layout::interleaved}) {
      for (int rot : {128, 38}) {
        auto cfg = longrope_config(rot, rot, layout, 4096);
        cfg.longrope.attention_factor = 1.5;
        const rope_frequencies f(cfg, {131072});
        const std::ptrdiff_t heads = 64;
        std::vector<T> a(static_cast<std::size_t>(heads * rot));
        std::mt19937 rng(5);
        std::uniform_int_distribution<int> bits(0, 0xffff);
        for (auto& v : a) v = Eigen::numext::bit_cast<T>(static_cast<std::uint16_t>(bits(rng)));
        const std::uint16_t specials[] = {0x7f80, 0xff80, 0x7fc1, 0xffff, 0x7f81, 0x0001, 0x8003, 0x0080, 0x7f7f,
                                          0x3f80, 0x3f81, 0x3f83, 0xbf85, 0x0000, 0x8000, 0x7c00, 0xfc00, 0x7e01};
        for (std::size_t i = 0; i < sizeof(specials) / sizeof(specials[0]); ++i) {
          a[i * 7] = Eigen::numext::bit_cast<T>(specials[i]);
        }
        std::vector<T> ref = a;
        const std::int64_t p[] = {0};
        rotate(f, token_major(a.data(), 1, 1, heads, rot), {p, 0}, {0, 1});
        const detail::io_pair<T> io{token_major(ref.data(), 1, 1, heads, rot), token_major(ref.data(), 1, 1, heads, rot)};
        detail::rotate_entry<T, kernel_path::scalar>(f, nullptr, io, nullptr, {p, 0}, {0, 1}, false, "test");
        std::size_t bad = 0;
        for (std::size_t i = 0; i < a.size(); ++i) {
          const float r = static_cast<float>(ref[i]);
          const float x = static_cast<float>(a[i]);
          const bool same = std::isnan(r) ? std::isnan(x)
                                          : (Eigen::numext::bit_cast<std::uint16_t>(ref[i]) ==
                                                 Eigen::numext::bit_cast<std::uint16_t>(a[i]) ||
                                             // AVX512-BF16 flushes float denormals (see storage_ulp).
                                             (std::is_same_v<T, Eigen::bfloat16> && std::abs(r) < 1.2e-38f && x == 0.0f));
          if (!same && bad++ < 5) UNSCOPED_INFO("element " << i << ": reference " << r << " vector " << x);
        }
        INFO(type_name<T>() << " layout " << static_cast<int>(layout) << " rotary_dim " << rot);
        CHECK(bad == 0);
      }
    }
  };
  for_each_isa([&] {
    body(Eigen::bfloat16());
    body(Eigen::half());
  });
}
