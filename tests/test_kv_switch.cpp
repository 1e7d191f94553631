// The short/long switch (kv_switch.hpp, rerotate.hpp's vector path): keys the
// library rotated with the short factors and then switched equal keys rotated
// directly with the long factors, for every storage type and several layouts.
// References are long double computations written here from the config's
// numbers (base, factors), not from the code under test.
#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <type_traits>
#include <vector>

#include <longrope/json.hpp>
#include <longrope/kv_switch.hpp>
#include <longrope/longrope.hpp>

#include "catch.hpp"
#include "shared_data.hpp"

using namespace longrope;

namespace {

rope_config load(const std::string& name) {
  return load_rope_config((longrope_test::test_data_dir() / "configs" / name).string());
}

template <class T>
double to_d(T v) {
  if constexpr (std::is_same_v<T, double>) {
    return v;
  } else {
    return static_cast<double>(static_cast<float>(v));
  }
}

/// One ulp of storage type T at magnitude m (binary exponent of m).
template <class T>
double ulp_at(double m) {
  const int bits = std::is_same_v<T, double> ? 52 : std::is_same_v<T, float> ? 23 : std::is_same_v<T, Eigen::half> ? 10 : 7;
  if (m == 0.0) return std::ldexp(1.0, -1000);
  int e = 0;
  std::frexp(m, &e);  // m in [2^(e-1), 2^e)
  return std::ldexp(1.0, e - 1 - bits);
}

template <class T>
const char* type_name() {
  if constexpr (std::is_same_v<T, float>) return "float";
  if constexpr (std::is_same_v<T, double>) return "double";
  if constexpr (std::is_same_v<T, Eigen::half>) return "half";
  return "bfloat16";
}

/// The frequency of pair i for position p, from the config alone (long double):
/// theta_i = base^(-2i/d) below n_hat, theta_i / lambda_i from n_hat on.
long double ref_freq(const rope_config& c, bool long_set, std::int64_t p, int i) {
  const int d = c.effective_rotary_dim();
  const long double theta = std::pow(static_cast<long double>(c.base), -2.0L * i / d);
  if (p < c.n_hat) return theta;
  const auto& lam = long_set ? c.longrope.long_factor : c.longrope.short_factor;
  return theta / static_cast<long double>(lam[static_cast<std::size_t>(i)]);
}

struct layout_case {
  const char* name;
  // element offsets of (b, t, h) for a cache of batch x tokens x heads x head_dim
  std::ptrdiff_t batch_stride, token_stride, head_stride, size;
};

std::vector<layout_case> layouts(std::ptrdiff_t B, std::ptrdiff_t N, std::ptrdiff_t H, std::ptrdiff_t D) {
  std::vector<layout_case> v;
  v.push_back({"head-major", H * N * D, D, N * D, B * H * N * D});
  v.push_back({"token-major", N * H * D, H * D, D, B * N * H * D});
  // padded: heads 8 apart beyond head_dim, tokens 4 more, rows 16 more
  const std::ptrdiff_t hs = D + 8, ts = H * hs + 4, bs = N * ts + 16;
  v.push_back({"padded token-major", bs, ts, hs, B * bs});
  // padded head-major (a paged-like cache: tokens 3 * head_dim apart)
  const std::ptrdiff_t ts2 = 3 * D, hs2 = N * ts2 + 8, bs2 = H * hs2;
  v.push_back({"padded head-major", bs2, ts2, hs2, B * bs2});
  return v;
}

struct errors {
  double own = 0;        // worst (|switched - g R(delta) cached|) / own bound
  double end = 0;        // worst (|switched - exact long rotation|) / end-to-end bound
  double direct = 0;     // worst (|direct long rotation - exact|) / the rotation's bound
  double stale = 0;      // largest |cached - exact long rotation| relative to the pair magnitude
};

/// Caches raw keys rotated with the short factors (library rotate), switches
/// them with switch_kv (old 4096 -> new 4097 for a Phi-3 config), and checks
/// the results as described in the file comment. Returns the worst ratios.
template <class T>
errors check_switch(const rope_config& cfg0, pair_layout pl, const layout_case& L, std::ptrdiff_t B,
                    std::ptrdiff_t N, std::ptrdiff_t H, const std::vector<std::int64_t>& pos) {
  rope_config cfg = cfg0;
  cfg.layout = pl;
  const std::ptrdiff_t D = cfg.head_dim;
  const int n = cfg.pairs();
  const factor_switch sw(cfg, factor_policy::by_sequence_length);
  const std::int64_t L0 = sw.original_length();
  const rope_frequencies& fs = sw.frequencies(factor_set::short_factors);
  const rope_frequencies& fl = sw.frequencies(factor_set::long_factors);
  const long double att = fl.attention_factor();
  const long double two_pi = 6.283185307179586476925286766559L;

  std::mt19937_64 rng(7);
  std::normal_distribution<double> g;
  const T sentinel = static_cast<T>(12345.0f);
  std::vector<T> raw(static_cast<std::size_t>(L.size), sentinel);
  heads_view<T> vraw{raw.data(), B, N, H, D, L.batch_stride, L.token_stride, L.head_stride};
  for (std::ptrdiff_t b = 0; b < B; ++b)
    for (std::ptrdiff_t t = 0; t < N; ++t)
      for (std::ptrdiff_t h = 0; h < H; ++h)
        for (std::ptrdiff_t c = 0; c < D; ++c) vraw.at(b, t, h)[c] = static_cast<T>(g(rng));
  std::vector<T> cached = raw, direct = raw;
  heads_view<T> vc = vraw, vd = vraw;
  vc.data = cached.data();
  vd.data = direct.data();
  const positions_view pv{pos.data(), N};
  rotate(fs, vc, pv, token_range{0, N});
  rotate(fl, vd, pv, token_range{0, N});
  const std::vector<T> before = cached;
  REQUIRE(switch_kv(sw, vc, pv, L0, L0 + 1) == factor_set::long_factors);

  errors e;
  const bool half = pl == pair_layout::half_split;
  for (std::ptrdiff_t b = 0; b < B; ++b) {
    for (std::ptrdiff_t t = 0; t < N; ++t) {
      const std::int64_t p = pos[static_cast<std::size_t>(b * N + t)];
      for (std::ptrdiff_t h = 0; h < H; ++h) {
        const T* r = vraw.at(b, t, h);
        const T* s = vc.at(b, t, h);
        const T* d = vd.at(b, t, h);
        const std::size_t off = static_cast<std::size_t>(vc.at(b, t, h) - cached.data());
        for (int i = 0; i < n; ++i) {
          const std::ptrdiff_t j0 = half ? i : 2 * i, j1 = half ? i + n : 2 * i + 1;
          // (1) the switch's own arithmetic: g R(delta) applied to the cached values,
          // delta from the library's double frequencies, evaluated in long double.
          const long double delta =
              static_cast<long double>(p) * (static_cast<long double>(fl.frequency(p, i)) -
                                             static_cast<long double>(fs.frequency(p, i)));
          const long double dr = std::fmod(delta, two_pi);
          const long double c0 = to_d(before[off + static_cast<std::size_t>(j0)]);
          const long double c1 = to_d(before[off + static_cast<std::size_t>(j1)]);
          const long double y0 = c0 * std::cos(dr) - c1 * std::sin(dr);
          const long double y1 = c0 * std::sin(dr) + c1 * std::cos(dr);
          const double mag_c = static_cast<double>(std::fabs(c0) + std::fabs(c1));
          for (auto [j, y] : {std::pair{j0, y0}, std::pair{j1, y1}}) {
            const double bound = 1e-6 * mag_c + ulp_at<T>(std::fabs(static_cast<double>(y)));
            const double own_bound = std::is_same_v<T, double> ? 1e-9 * mag_c : bound;
            e.own = std::max(e.own, std::fabs(to_d(s[j]) - static_cast<double>(y)) / own_bound);
          }
          // (2) end to end: the raw key rotated exactly with the long factors
          // (frequencies from the config's numbers, long double).
          const long double a = std::fmod(static_cast<long double>(p) * ref_freq(cfg, true, p, i), two_pi);
          const long double x0 = to_d(r[j0]), x1 = to_d(r[j1]);
          const long double z0 = att * (x0 * std::cos(a) - x1 * std::sin(a));
          const long double z1 = att * (x0 * std::sin(a) + x1 * std::cos(a));
          const double m = static_cast<double>(std::hypot(z0, z1));
          const double mag_x = static_cast<double>(att * (std::fabs(x0) + std::fabs(x1)));
          for (auto [j, z] : {std::pair{j0, z0}, std::pair{j1, z1}}) {
            const double zd = static_cast<double>(z);
            // the rotation's stated bound for the direct rotation
            const double rot_bound = std::is_same_v<T, double> ? 1e-9 * mag_x
                                                               : 1e-6 * mag_x * std::max(1.0, static_cast<double>(att)) +
                                                                     ulp_at<T>(std::fabs(zd));
            e.direct = std::max(e.direct, std::fabs(to_d(d[j]) - zd) / rot_bound);
            // switched keys carry the cached key's rounding too: twice the bound at the pair's magnitude
            const double end_bound = std::is_same_v<T, double>
                                         ? 2e-9 * mag_x
                                         : 2e-6 * mag_x * std::max(1.0, static_cast<double>(att)) + 2 * ulp_at<T>(m);
            e.end = std::max(e.end, std::fabs(to_d(s[j]) - zd) / end_bound);
            if (m > 0.5) e.stale = std::max(e.stale, std::fabs(to_d(before[off + static_cast<std::size_t>(j)]) - zd) / m);
          }
        }
        // pass-through channels untouched
        for (std::ptrdiff_t c = 2 * n; c < D; ++c) REQUIRE(to_d(s[c]) == to_d(before[off + static_cast<std::size_t>(c)]));
      }
    }
  }
  // padding untouched: every element outside the view is still the sentinel
  std::vector<char> inside(cached.size(), 0);
  for (std::ptrdiff_t b = 0; b < B; ++b)
    for (std::ptrdiff_t t = 0; t < N; ++t)
      for (std::ptrdiff_t h = 0; h < H; ++h)
        for (std::ptrdiff_t c = 0; c < D; ++c) inside[static_cast<std::size_t>(vc.at(b, t, h) + c - cached.data())] = 1;
  for (std::size_t k = 0; k < cached.size(); ++k) {
    if (!inside[k]) REQUIRE(to_d(cached[k]) == to_d(sentinel));
  }
  return e;
}

std::vector<std::int64_t> test_positions(std::ptrdiff_t B, std::ptrdiff_t N) {
  std::vector<std::int64_t> pos(static_cast<std::size_t>(B * N));
  std::mt19937_64 rng(11);
  std::uniform_int_distribution<std::int64_t> up(0, 131071);
  for (std::size_t i = 0; i < pos.size(); ++i) pos[i] = i < 6 ? static_cast<std::int64_t>(i) : up(rng);
  pos[6] = 4095;
  pos[7] = 4096;
  pos[8] = 131071;
  pos[9] = std::int64_t{1} << 20;
  return pos;
}

template <class T>
void check_type() {
  const std::ptrdiff_t B = 2, N = 37, H = 3;  // 37 tokens: blocks of 42 rows and a partial one for 16 pairs
  const auto pos = test_positions(B, N);
  for (const char* name : {"phi-3.5-mini-instruct.json", "longrope-nhat-partial.json"}) {
    const rope_config cfg = load(name);
    for (auto pl : {pair_layout::half_split, pair_layout::interleaved}) {
      for (const auto& L : layouts(B, N, H, cfg.head_dim)) {
        INFO(type_name<T>() << " " << name << " " << to_string(pl) << " " << L.name);
        const errors e = check_switch<T>(cfg, pl, L, B, N, H, pos);
        INFO("worst / bound: own " << e.own << ", end-to-end " << e.end << ", direct " << e.direct
                                   << "; stale keys off by " << e.stale << " of the pair magnitude");
        CHECK(e.own <= 1.0);
        CHECK(e.end <= 1.0);
        CHECK(e.direct <= 1.0);
        CHECK(e.stale > 0.1);  // without the switch the cached keys are wrong: the test can fail
      }
    }
  }
}

}  // namespace

TEST_CASE("switch_kv: switched keys equal keys rotated directly with the long factors (float)", "[kv_switch]") {
  check_type<float>();
}
TEST_CASE("switch_kv: switched keys equal keys rotated directly with the long factors (double)", "[kv_switch]") {
  check_type<double>();
}
TEST_CASE("switch_kv: switched keys equal keys rotated directly with the long factors (half)", "[kv_switch]") {
  check_type<Eigen::half>();
}
TEST_CASE("switch_kv: switched keys equal keys rotated directly with the long factors (bfloat16)", "[kv_switch]") {
  check_type<Eigen::bfloat16>();
}

TEST_CASE("switch_kv: only a change of factor set touches the cache", "[kv_switch]") {
  const rope_config cfg = load("phi-3.5-mini-instruct.json");
  const factor_switch sw(cfg, factor_policy::by_sequence_length);
  REQUIRE(sw.original_length() == 4096);
  CHECK(sw.set_for(4096) == factor_set::short_factors);
  CHECK(sw.set_for(4097) == factor_set::long_factors);
  std::vector<float> k(static_cast<std::size_t>(5 * 2 * 96));
  for (std::size_t i = 0; i < k.size(); ++i) k[i] = std::sin(0.37f * static_cast<float>(i));
  const auto before = k;
  std::vector<std::int64_t> pos = {0, 1, 2, 3, 4};
  auto v = token_major(k.data(), 1, 5, 2, 96);
  CHECK(switch_kv(sw, v, {pos.data(), 0}, 5, 512) == factor_set::short_factors);
  CHECK(switch_kv(sw, v, {pos.data(), 0}, 5000, 6000) == factor_set::long_factors);
  CHECK(k == before);
  // by_context_capacity never switches: long for every length when the capacity exceeds L0
  const factor_switch cap(cfg, factor_policy::by_context_capacity, 131072);
  CHECK(cap.set_for(10) == factor_set::long_factors);
  CHECK(switch_kv(cap, v, {pos.data(), 0}, 4096, 4097) == factor_set::long_factors);
  CHECK(k == before);
  const factor_switch small_cap(cfg, factor_policy::by_context_capacity, 4096);
  CHECK(small_cap.set_for(100000) == factor_set::short_factors);
  // a method without factor sets never switches
  rope_config plain;
  plain.head_dim = 96;
  const factor_switch none(plain, factor_policy::by_sequence_length);
  CHECK(none.set_for(1 << 20) == factor_set::none);
  // short -> long -> short comes back (within float rounding)
  CHECK(switch_kv(sw, v, {pos.data(), 0}, 4096, 4097) == factor_set::long_factors);
  CHECK(k != before);
  CHECK(switch_kv(sw, v, {pos.data(), 0}, 4097, 4000) == factor_set::short_factors);
  for (std::size_t i = 0; i < k.size(); ++i) CHECK(k[i] == Approx(before[i]).margin(1e-6));
}

TEST_CASE("switch_kv batched: one factor set per row, rows of different lengths", "[kv_switch]") {
  const rope_config cfg = load("phi-3.5-mini-instruct.json");
  const factor_switch sw(cfg, factor_policy::by_sequence_length);
  const std::ptrdiff_t B = 3, N = 20, H = 2, D = 96;
  std::vector<float> k(static_cast<std::size_t>(B * H * N * D));
  for (std::size_t i = 0; i < k.size(); ++i) k[i] = std::cos(0.11f * static_cast<float>(i));
  std::vector<std::int64_t> pos(static_cast<std::size_t>(B * N));
  for (std::ptrdiff_t b = 0; b < B; ++b)
    for (std::ptrdiff_t t = 0; t < N; ++t) pos[static_cast<std::size_t>(b * N + t)] = 4080 * b + t * 3;
  const auto view = head_major(k.data(), B, H, N, D);
  // row 0 crosses 4096 with 12 cached tokens; row 1 stays short; row 2 crosses with all 20 cached
  const kv_row rows[3] = {{12, 4096, 4097}, {20, 100, 200}, {20, 4000, 8000}};
  // expected: each row alone through the single-sequence call on a copy
  std::vector<float> expect = k;
  for (std::ptrdiff_t b = 0; b < B; ++b) {
    heads_view<float> v = head_major(expect.data(), B, H, N, D);
    v.data = v.at(b, 0, 0);
    v.batch = 1;
    v.tokens = rows[b].cached;
    switch_kv(sw, v, {pos.data() + b * N, 0}, rows[b].old_length, rows[b].new_length);
  }
  const auto before = k;
  factor_set active[3] = {factor_set::none, factor_set::none, factor_set::none};
  switch_kv(sw, view, {pos.data(), N}, rows, active);
  CHECK(active[0] == factor_set::long_factors);
  CHECK(active[1] == factor_set::short_factors);
  CHECK(active[2] == factor_set::long_factors);
  CHECK(k == expect);  // bit-identical to the per-row calls
  for (std::ptrdiff_t h = 0; h < H; ++h) {
    // row 0: tokens past `cached` untouched; row 1 untouched
    for (std::ptrdiff_t t = 12; t < N; ++t)
      for (std::ptrdiff_t c = 0; c < D; ++c) {
        const auto i = static_cast<std::size_t>((h * N + t) * D + c);
        REQUIRE(k[i] == before[i]);
      }
    CHECK(k[static_cast<std::size_t>((h * N + 11) * D + 40)] != before[static_cast<std::size_t>((h * N + 11) * D + 40)]);
    for (std::ptrdiff_t t = 0; t < N; ++t)
      for (std::ptrdiff_t c = 0; c < D; ++c) {
        const auto i = static_cast<std::size_t>(((H + h) * N + t) * D + c);
        REQUIRE(k[i] == before[i]);
      }
  }
}

TEST_CASE("switch_kv rejects bad arguments before touching any row", "[kv_switch]") {
  const rope_config cfg = load("phi-3.5-mini-instruct.json");
  const factor_switch sw(cfg, factor_policy::by_sequence_length);
  std::vector<float> k(static_cast<std::size_t>(2 * 4 * 96), 1.0f);
  std::vector<std::int64_t> pos = {0, 1, 2, 3, 0, 1, -7, 3};
  const auto view = token_major(k.data(), 2, 4, 1, 96);
  auto expect = [&](auto&& fn, const std::string& what) {
    try {
      fn();
      FAIL("no error for " << what);
    } catch (const longrope::error& e) {
      CHECK(e.id() == "longrope.argument");
      CHECK_THAT(e.what(), Catch::Contains(what));
    }
    for (float x : k) REQUIRE(x == 1.0f);
  };
  const kv_row good_bad_pos[2] = {{4, 4096, 4097}, {4, 4096, 4097}};
  expect([&] { switch_kv(sw, view, {pos.data(), 4}, good_bad_pos, nullptr); }, "position -7");
  const kv_row too_many[2] = {{4, 4096, 4097}, {5, 4096, 4097}};
  expect([&] { switch_kv(sw, view, {pos.data(), 4}, too_many, nullptr); }, "row 1 has cached 5");
  const kv_row negative[2] = {{4, 4096, 4097}, {1, -1, 4097}};
  expect([&] { switch_kv(sw, view, {pos.data(), 4}, negative, nullptr); }, "row 1");
  expect([&] { switch_kv(sw, view, {pos.data(), 4}, static_cast<const kv_row*>(nullptr), nullptr); }, "null rows");
  expect([&] { switch_kv(sw, view, {pos.data(), 0}, -1, 5000); }, "lengths must be >= 0");
  auto bad = view;
  bad.head_dim = 64;
  expect([&] { switch_kv(sw, bad, {pos.data(), 0}, 4096, 4097); }, "head_dim");
  std::vector<std::int64_t> far = {0, 1, 2, std::int64_t{1} << 62};
  expect([&] { switch_kv(sw, token_major(k.data(), 1, 4, 1, 96), {far.data(), 0}, 4096, 4097); }, "2^29");
}

TEST_CASE("rerotate on half and bfloat16 caches agrees with the float path", "[kv_switch][rerotate]") {
  // The same keys stored as float and as 16-bit: the 16-bit result is the float
  // result rounded (within one ulp of the 16-bit type, plus the float bound).
  const rope_config cfg = load("phi-4-mini-instruct.json");
  const rope_frequencies fs(cfg, {0, factor_policy::always_short}), fl(cfg, {0, factor_policy::always_long});
  const std::ptrdiff_t N = 50, H = 2, D = cfg.head_dim;
  std::vector<std::int64_t> pos(static_cast<std::size_t>(N));
  for (std::ptrdiff_t t = 0; t < N; ++t) pos[static_cast<std::size_t>(t)] = 4000 + 97 * t;
  std::vector<float> kf(static_cast<std::size_t>(N * H * D));
  for (std::size_t i = 0; i < kf.size(); ++i) kf[i] = std::sin(1.3f * static_cast<float>(i) + 0.2f);
  std::vector<Eigen::half> kh(kf.size());
  std::vector<Eigen::bfloat16> kb(kf.size());
  for (std::size_t i = 0; i < kf.size(); ++i) {
    kh[i] = Eigen::half(kf[i]);
    kb[i] = Eigen::bfloat16(kf[i]);
    kf[i] = static_cast<float>(kh[i]);  // the float copy holds the half values exactly
  }
  std::vector<float> kf2(kf.size());
  for (std::size_t i = 0; i < kf.size(); ++i) kf2[i] = static_cast<float>(kb[i]);
  rerotate(fs, fl, token_major(kf.data(), 1, N, H, D), {pos.data(), 0});
  rerotate(fs, fl, token_major(kf2.data(), 1, N, H, D), {pos.data(), 0});
  rerotate(fs, fl, token_major(kh.data(), 1, N, H, D), {pos.data(), 0});
  rerotate(fs, fl, token_major(kb.data(), 1, N, H, D), {pos.data(), 0});
  for (std::size_t i = 0; i < kf.size(); ++i) {
    REQUIRE(std::fabs(static_cast<float>(kh[i]) - kf[i]) <= ulp_at<Eigen::half>(std::fabs(kf[i])) + 1e-6);
    REQUIRE(std::fabs(static_cast<float>(kb[i]) - kf2[i]) <= ulp_at<Eigen::bfloat16>(std::fabs(kf2[i])) + 1e-6);
  }
}
