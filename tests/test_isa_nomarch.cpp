// A consumer compiled the way an engine compiles by default: no -march flags
// (this target does not link longrope_project_options). It must still get
// the vector kernels the CPU has through the runtime dispatch, and they must
// agree with the scalar reference. The CPU's features are read independently
// of the library, from /proc/cpuinfo (Linux x86-64; elsewhere only the
// agreement is checked).
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <longrope/longrope.hpp>

#if defined(__AVX2__) || defined(__AVX512F__)
#error "test_isa_nomarch must be compiled without -march/-mavx2 flags"
#endif

namespace {

std::set<std::string> cpu_flags() {
  std::set<std::string> flags;
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("flags", 0) != 0) continue;
    std::istringstream words(line.substr(line.find(':') + 1));
    for (std::string w; words >> w;) flags.insert(w);
    break;
  }
  return flags;
}

/// head_dim 128, plain RoPE, in `layout`, at sequence length seq_len.
longrope::rope_frequencies freqs_128(longrope::pair_layout layout, std::int64_t seq_len) {
  longrope::rope_config c;
  c.head_dim = 128;
  c.layout = layout;
  return longrope::rope_frequencies(c, {seq_len});
}

int failures = 0;
void check(bool ok, const std::string& what) {
  std::printf("%s: %s\n", ok ? "ok" : "FAILED", what.c_str());
  if (!ok) ++failures;
}

}  // namespace

int main() {
  using namespace longrope;
  if (std::getenv("LONGROPE_ISA") != nullptr) {
    std::printf("LONGROPE_ISA is set: unset it for this test\n");
    return 1;
  }
  const auto flags = cpu_flags();
  const bool has_avx2 = flags.count("avx2") && flags.count("fma") && flags.count("f16c");
  const bool has_avx512 = has_avx2 && flags.count("avx512f") && flags.count("avx512bw") && flags.count("avx512vl") &&
                          flags.count("avx512dq");
  std::printf("cpuinfo: avx2+fma+f16c %d, avx512 f/bw/vl/dq %d; active_isa %s\n", has_avx2, has_avx512,
              isa_name(active_isa()));
#if (defined(__x86_64__) || defined(_M_X64)) && !defined(LONGROPE_FORCE_SCALAR)
  if (!flags.empty()) {
    const isa expected = has_avx512 ? isa::avx512 : has_avx2 ? isa::avx2 : isa::scalar;
    check(active_isa() == expected, std::string("active_isa() is ") + isa_name(expected) + " without -march");
  }
#endif

  // The dispatched kernels against the scalar reference, prefill-sized token
  // count, both layouts, table-free and from a table.
  for (pair_layout layout : {pair_layout::half_split, pair_layout::interleaved}) {
    const rope_frequencies f = freqs_128(layout, 4096);
    std::mt19937 rng(3);
    std::uniform_real_distribution<float> u(-1.0f, 1.0f);
    const std::ptrdiff_t tokens = 64;
    std::vector<float> q(static_cast<std::size_t>(tokens * 4 * 128)), k(static_cast<std::size_t>(tokens * 2 * 128));
    for (auto& v : q) v = u(rng);
    for (auto& v : k) v = u(rng);
    std::vector<std::int32_t> pos(static_cast<std::size_t>(tokens));
    for (std::ptrdiff_t t = 0; t < tokens; ++t) pos[static_cast<std::size_t>(t)] = static_cast<std::int32_t>(4000 + 3 * t);
    auto run = [&](isa which, std::vector<float> qq, std::vector<float> kk) {
      set_isa(which);
      rotate_qk(f, token_major(qq.data(), 1, tokens, 4, 128), token_major(kk.data(), 1, tokens, 2, 128),
                {pos.data(), 0}, {0, tokens});
      qq.insert(qq.end(), kk.begin(), kk.end());
      return qq;
    };
    const auto ref = run(isa::scalar, q, k);
    const auto vec = run(best_isa(), q, k);
    reset_isa();
    double worst = 0.0;
    for (std::size_t i = 0; i < ref.size(); ++i) worst = std::fmax(worst, std::fabs(ref[i] - vec[i]));
    // |x0| + |x1| <= 2 here: the documented bound 1e-6 (|x0| + |x1|) max(att, 1).
    check(worst <= 2e-6, std::string(isa_name(best_isa())) + " vs scalar, " +
                             (layout == pair_layout::half_split ? "half-split" : "interleaved") +
                             ": max |diff| " + std::to_string(worst));
  }

  // bfloat16 storage on the avx512 path: the AVX512-BF16 kernel set (one
  // vcvtneps2bf16 per store) where the CPU has it, else the integer rounding.
  // Both round the same float to nearest even, so outside float denormals they
  // must give the same bits; both within one bf16 ulp of the scalar reference.
  const bool has_bf16 = has_avx512 && flags.count("avx512_bf16");
#if (defined(__x86_64__) || defined(_M_X64)) && !defined(LONGROPE_FORCE_SCALAR) && \
    defined(LONGROPE_KERNELS_AVX512BF16)
  if (!flags.empty()) {
    check(detail::avx512_bf16_kernels_active() == has_bf16,
          std::string("the avx512bf16 kernel set is ") + (has_bf16 ? "" : "not ") +
              "taken (cpuinfo avx512_bf16 " + std::to_string(has_bf16) + ")");
  }
#endif
  if (isa_supported(isa::avx512)) {
    using bf16 = Eigen::bfloat16;
    for (pair_layout layout : {pair_layout::half_split, pair_layout::interleaved}) {
      const rope_frequencies f = freqs_128(layout, 4096);
      std::mt19937 rng(5);
      std::uniform_real_distribution<float> u(-4.0f, 4.0f);
      for (std::ptrdiff_t tokens : {1, 37}) {  // decode, and a prefill with a ragged count
        std::vector<bf16> q(static_cast<std::size_t>(tokens * 5 * 128)),
            k(static_cast<std::size_t>(tokens * 3 * 128));
        for (auto& v : q) v = bf16(u(rng));
        for (auto& v : k) v = bf16(u(rng));
        std::vector<std::int64_t> pos(static_cast<std::size_t>(tokens));
        for (std::ptrdiff_t t = 0; t < tokens; ++t) pos[static_cast<std::size_t>(t)] = 123457 + 11 * t;
        auto run = [&](isa which, bool native, std::vector<bf16> qq, std::vector<bf16> kk) {
          set_isa(which);
          detail::avx512_bf16_native_set(native);
          rotate_qk(f, token_major(qq.data(), 1, tokens, 5, 128), token_major(kk.data(), 1, tokens, 3, 128),
                    {pos.data(), 0}, {0, tokens});
          qq.insert(qq.end(), kk.begin(), kk.end());
          return qq;
        };
        const auto ref = run(isa::scalar, true, q, k);
        const auto native = run(isa::avx512, true, q, k);
        const auto emulated = run(isa::avx512, false, q, k);
        detail::avx512_bf16_native_set(true);
        reset_isa();
        std::size_t differ = 0;
        double worst = 0.0;
        for (std::size_t i = 0; i < ref.size(); ++i) {
          differ += Eigen::numext::bit_cast<std::uint16_t>(native[i]) !=
                    Eigen::numext::bit_cast<std::uint16_t>(emulated[i]);
          const float r = static_cast<float>(ref[i]);
          const float ulp = std::ldexp(1.0f, std::ilogb(std::fmax(std::fabs(r), 1e-30f)) - 7);
          worst = std::fmax(worst, std::fabs(r - static_cast<float>(native[i])) / ulp);
        }
        const std::string what =
            std::string(layout == pair_layout::half_split ? "half-split" : "interleaved") + ", " +
            std::to_string(tokens) + " token(s)";
        check(differ == 0, "bf16 avx512: native-store kernels equal the emulated store bit for bit, " + what +
                               " (" + std::to_string(differ) + " differ)");
        check(worst <= 1.0,
              "bf16 avx512 vs scalar within 1 bf16 ulp, " + what + ": " + std::to_string(worst) + " ulp");
      }
    }
  } else {
    std::printf("skipped: bf16 avx512 store checks (no AVX-512 here)\n");
  }
  return failures == 0 ? 0 : 1;
}
