// precision_sweep: the error of longrope's cos/sin tables against position,
// for the exact mode (float and double output) and the float32 mode that
// reproduces transformers' arithmetic. Writes CSV on stdout; docs/precision.md
// shows the result, scripts/plot_precision.py draws docs/precision.svg from it:
//
//   build/.../examples/precision_sweep [config.json] [seq_len] > docs/precision.csv
//   /usr/bin/python3 scripts/plot_precision.py docs/precision.csv docs/precision.svg
//
// The reference is long double (x87 80-bit on x86-64: 64-bit mantissa):
// angle = p * inv_freq_i (the double frequency, exactly representable), reduced
// mod 2 pi with a 64-bit pi, then cosl/sinl: accurate to ~1e-12 at p = 2^24,
// far below the errors measured. (tests/test_golden.cpp checks the library
// against an independent 50-digit mpmath reference instead.)
#include <cfloat>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <string>
#include <vector>

#include <longrope/json.hpp>
#include <longrope/longrope.hpp>

namespace {

// 2 pi to 70 bits; long double keeps 64 of them.
constexpr long double kTwoPi = 6.283185307179586476925286766559005768L;

long double ref_angle(std::int64_t p, double freq) {
  const long double a = static_cast<long double>(p) * static_cast<long double>(freq);
  return std::fmod(a, kTwoPi);
}

struct errors {
  double exact_float = 0, exact_double = 0, float32 = 0;
};

errors measure(const longrope::rope_frequencies& f, std::int64_t p) {
  const int n = f.pairs();
  std::vector<float> cf(static_cast<std::size_t>(n)), sf(cf.size()), c32(cf.size()), s32(cf.size());
  std::vector<double> cd(cf.size()), sd(cf.size());
  longrope::fill_table<float>(f, &p, 1, {cf.data(), 1, n}, {sf.data(), 1, n});
  longrope::fill_table<double>(f, &p, 1, {cd.data(), 1, n}, {sd.data(), 1, n});
  longrope::fill_table<float>(f, &p, 1, {c32.data(), 1, n}, {s32.data(), 1, n}, longrope::angle_precision::float32);
  const long double att = f.attention_factor();
  errors e;
  for (int i = 0; i < n; ++i) {
    const auto k = static_cast<std::size_t>(i);
    const long double a = ref_angle(p, f.frequency(p, i));
    const long double rc = att * std::cos(a), rs = att * std::sin(a);
    auto err = [](long double got, long double want) { return static_cast<double>(std::fabs(got - want)); };
    e.exact_float = std::max({e.exact_float, err(cf[k], rc), err(sf[k], rs)});
    e.exact_double = std::max({e.exact_double, err(cd[k], rc), err(sd[k], rs)});
    e.float32 = std::max({e.float32, err(c32[k], rc), err(s32[k], rs)});
  }
  return e;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const std::string path = argc > 1 ? argv[1]
                                      : std::string(LONGROPE_SOURCE_DIR) + "/tests/data/configs/phi-3.5-mini-instruct.json";
    const std::int64_t seq_len = argc > 2 ? std::stoll(argv[2]) : 131072;
    const longrope::rope_frequencies f(longrope::load_rope_config(path), {seq_len});
    if (LDBL_MANT_DIG < 64) {
      std::fprintf(stderr, "precision_sweep: long double has only %d mantissa bits; the reference is too coarse\n",
                   LDBL_MANT_DIG);
      return 1;
    }
    std::printf("# %s, seq_len %lld (%s factors), %d pairs, attention factor %.17g\n",
                std::filesystem::path(path).filename().string().c_str(),
                static_cast<long long>(seq_len), longrope::to_string(f.active_factor_set()), f.pairs(),
                f.attention_factor());
    std::printf("position,exact_float,exact_double,float32\n");
    // Per octave [2^k, 2^(k+1)): its first position, its last, and 8 positions in between;
    // each row reports the maximum over all pairs and the window of 64 positions from there.
    std::vector<std::int64_t> starts = {0, 1, 2, 3};
    for (int k = 2; k < 24; ++k) {
      const std::int64_t lo = std::int64_t{1} << k;
      for (int j = 0; j < 8; ++j) starts.push_back(lo + (lo * j) / 8);
    }
    starts.push_back((std::int64_t{1} << 24) - 64);
    for (std::int64_t s : starts) {
      errors worst;
      const std::int64_t window = s < 64 ? 1 : 64;
      for (std::int64_t p = s; p < s + window; ++p) {
        const errors e = measure(f, p);
        worst.exact_float = std::max(worst.exact_float, e.exact_float);
        worst.exact_double = std::max(worst.exact_double, e.exact_double);
        worst.float32 = std::max(worst.float32, e.float32);
      }
      std::printf("%lld,%.3e,%.3e,%.3e\n", static_cast<long long>(s + window - 1), worst.exact_float,
                  worst.exact_double, worst.float32);
    }
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "precision_sweep: %s\n", e.what());
    return 1;
  }
}
