// 16-bit cos/sin tables (Eigen::half, Eigen::bfloat16): fill_table against a
// long-double truth within the 16-bit rounding, and rotation from a 16-bit
// table equal to rotation from a float table holding the same (widened)
// values, on every ISA the machine runs, for pair counts with vector tails.
#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include <longrope/longrope.hpp>

#include "catch.hpp"

using namespace longrope;

namespace {

rope_frequencies freqs(int rotary_dim, pair_layout layout) {
  rope_config c;
  c.head_dim = rotary_dim + 2;  // two pass-through channels
  c.rotary_dim = rotary_dim;
  c.layout = layout;
  c.type = rope_type::longrope;
  c.max_position_embeddings = 131072;
  c.longrope.original_max_position = 4096;
  const int n = rotary_dim / 2;
  c.longrope.short_factor.assign(static_cast<std::size_t>(n), 1.0);
  c.longrope.long_factor.resize(static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) c.longrope.long_factor[static_cast<std::size_t>(i)] = 1.0 + 31.0 * i / std::max(1, n - 1);
  c.n_hat = 4096;
  return rope_frequencies(c, {131072});
}

std::vector<isa> isas() {
  std::vector<isa> v{isa::scalar};
  for (isa i : {isa::avx2, isa::avx512, isa::neon}) {
    if (isa_supported(i)) v.push_back(i);
  }
  return v;
}

// Relative spacing of T's significand, for the rounding bound.
template <class T>
double half_ulp_rel() {
  return std::is_same_v<T, Eigen::half> ? std::ldexp(1.0, -11) : std::ldexp(1.0, -8);
}

template <class T>
void check_type() {
  for (const isa which : isas()) {
    set_isa(which);
    INFO("isa " << isa_name(which));
    for (int rot : {2, 14, 32, 34, 64, 96, 128}) {
      for (pair_layout layout : {pair_layout::half_split, pair_layout::interleaved}) {
        const auto f = freqs(rot, layout);
        const int n = f.pairs();
        const std::int64_t first = 4090;
        const std::ptrdiff_t rows = 40;  // crosses n_hat = 4096, not a multiple of the 32-row restart
        std::vector<T> tc(static_cast<std::size_t>(rows * n)), ts(tc.size());
        fill_table<T>(f, position_range{first, first + rows}, {tc.data(), rows, n}, {ts.data(), rows, n});
        // Against the truth: float rounding (2e-7) plus half a 16-bit ulp.
        double worst = 0.0;
        for (std::ptrdiff_t r = 0; r < rows; ++r) {
          for (int i = 0; i < n; ++i) {
            const long double a = static_cast<long double>(first + r) * static_cast<long double>(f.frequency(first + r, i));
            const long double att = f.attention_factor();
            const double tcos = static_cast<double>(att * std::cos(a));
            const double tsin = static_cast<double>(att * std::sin(a));
            const auto k = static_cast<std::size_t>(r * n + i);
            const double ec = std::abs(tcos - static_cast<double>(static_cast<float>(tc[k]))) /
                              (half_ulp_rel<T>() * std::abs(tcos) + 2e-7 + 6e-8);
            const double es = std::abs(tsin - static_cast<double>(static_cast<float>(ts[k]))) /
                              (half_ulp_rel<T>() * std::abs(tsin) + 2e-7 + 6e-8);
            worst = std::max(worst, std::max(ec, es));
          }
        }
        INFO("rotary_dim " << rot);
        CHECK(worst <= 1.0);
        // The list-of-positions form agrees with the range form.
        const std::int64_t some[] = {4090, 4100, 4129};
        std::vector<T> lc(static_cast<std::size_t>(3 * n)), ls(lc.size());
        fill_table<T>(f, some, 3, {lc.data(), 3, n}, {ls.data(), 3, n});
        for (int r = 0; r < 3; ++r) {
          for (int i = 0; i < n; ++i) {
            const auto at = static_cast<std::size_t>((some[r] - first) * n + i);
            CHECK(std::abs(static_cast<float>(lc[static_cast<std::size_t>(r * n + i)]) - static_cast<float>(tc[at])) <=
                  static_cast<float>(2 * half_ulp_rel<T>()));
          }
        }

        // Rotation from the 16-bit table == rotation from a float table of the widened values.
        std::vector<float> fc(tc.size()), fs(tc.size());
        for (std::size_t i = 0; i < tc.size(); ++i) {
          fc[i] = static_cast<float>(tc[i]);
          fs[i] = static_cast<float>(ts[i]);
        }
        const basic_rope_table<T> t16{{tc.data(), rows, n}, {ts.data(), rows, n}, first};
        const rope_table t32{{fc.data(), rows, n}, {fs.data(), rows, n}, first};
        const std::int32_t pos[] = {4090, 4095, 4096, 4129, 4100};
        const std::ptrdiff_t hd = f.head_dim();
        std::mt19937 rng(5);
        std::uniform_real_distribution<float> u(-1.0f, 1.0f);
        for (auto dir : {rotation_direction::forward, rotation_direction::inverse}) {
          std::vector<float> q(static_cast<std::size_t>(5 * 3 * hd)), k(static_cast<std::size_t>(5 * hd));
          for (auto& v : q) v = u(rng);
          for (auto& v : k) v = u(rng);
          auto q2 = q, k2 = k;
          rotate_qk(f, t16, token_major(q.data(), 1, 5, 3, hd), token_major(k.data(), 1, 5, 1, hd), {pos, 0}, {0, 5},
                    dir);
          rotate_qk(f, t32, token_major(q2.data(), 1, 5, 3, hd), token_major(k2.data(), 1, 5, 1, hd), {pos, 0},
                    {0, 5}, dir);
          CHECK(q == q2);
          CHECK(k == k2);
        }
        // 16-bit activations from a 16-bit table, out of place.
        std::vector<T> x(static_cast<std::size_t>(5 * 2 * hd)), y(x.size()), y2(x.size());
        for (auto& v : x) v = static_cast<T>(u(rng));
        rotate<T>(f, t16, token_major<const T>(x.data(), 1, 5, 2, hd), token_major(y.data(), 1, 5, 2, hd), {pos, 0},
                  {0, 5});
        rotate<T>(f, t32, token_major<const T>(x.data(), 1, 5, 2, hd), token_major(y2.data(), 1, 5, 2, hd), {pos, 0},
                  {0, 5});
        bool same = true;
        for (std::size_t i = 0; i < y.size(); ++i) same = same && y[i] == y2[i];
        CHECK(same);
      }
    }
  }
  reset_isa();
}

}  // namespace

TEST_CASE("half tables: fill_table within half rounding; rotation from them", "[tables16]") {
  check_type<Eigen::half>();
}

TEST_CASE("bfloat16 tables: fill_table within bf16 rounding; rotation from them", "[tables16]") {
  check_type<Eigen::bfloat16>();
}

TEST_CASE("16-bit table errors: short tables are rejected", "[tables16]") {
  const auto f = freqs(64, pair_layout::half_split);
  std::vector<Eigen::half> c(4 * 32), s(4 * 32);
  const rope_table_half t{{c.data(), 4, 32}, {s.data(), 4, 32}, 10};
  std::vector<float> x(66);
  const std::int64_t far[] = {14};
  try {
    rotate(f, t, token_major(x.data(), 1, 1, 1, 66), {far, 0}, {0, 1});
    FAIL("position outside the table accepted");
  } catch (const error& e) {
    CHECK(std::string(e.id()) == "longrope.argument");
  }
}
