// longrope: header-only LongRoPE positional interpolation. MIT License.
#pragma once

/// \file search/rng.hpp
/// Random numbers for the search: a serialisable engine (search_rng) and
/// distributions whose output is fixed by this header (std:: distributions are
/// implementation-defined), so a seeded search is reproducible everywhere.
/// Part of <longrope/search.hpp>.

#include <array>
#include <cstdint>
#include <limits>

#include "../error.hpp"

namespace longrope {

// ===========================================================================
// Random numbers

/// xoshiro256** (Blackman & Vigna): a small, fast engine whose full state is
/// four 64-bit words, so a search checkpoint can store and restore it exactly.
/// Satisfies UniformRandomBitGenerator. Seeded through splitmix64, so every
/// 64-bit seed (including 0) gives a valid, well-mixed state.
class search_rng {
 public:
  using result_type = std::uint64_t;
  using state_type = std::array<std::uint64_t, 4>;

  /// Seeds the four words from splitmix64(seed). O(1).
  explicit search_rng(std::uint64_t seed = 0) noexcept {
    for (auto& w : s_) {
      seed += 0x9e3779b97f4a7c15ULL;
      std::uint64_t z = seed;
      z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
      z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
      w = z ^ (z >> 31);
    }
  }
  static constexpr result_type min() noexcept { return 0; }
  static constexpr result_type max() noexcept { return ~std::uint64_t{0}; }

  /// The next 64 random bits. O(1).
  result_type operator()() noexcept {
    const std::uint64_t r = rotl(s_[1] * 5, 7) * 9;
    const std::uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = rotl(s_[3], 45);
    return r;
  }

  /// The complete state (for checkpoints).
  const state_type& state() const noexcept { return s_; }
  /// Restores a state from state(). Throws longrope::error ("longrope.search")
  /// for the all-zero state, which xoshiro cannot leave.
  void set_state(const state_type& s) {
    if (s[0] == 0 && s[1] == 0 && s[2] == 0 && s[3] == 0) {
      LONGROPE_THROW("longrope.search", "rng state: all-zero state is invalid for xoshiro256**");
    }
    s_ = s;
  }
  friend bool operator==(const search_rng& a, const search_rng& b) noexcept { return a.s_ == b.s_; }
  friend bool operator!=(const search_rng& a, const search_rng& b) noexcept { return !(a == b); }

 private:
  static std::uint64_t rotl(std::uint64_t x, int k) noexcept { return (x << k) | (x >> (64 - k)); }
  state_type s_{};
};

/// 64 uniformly random bits from any UniformRandomBitGenerator g, by
/// concatenating draws (rejecting values above the largest power-of-two range
/// the engine covers). The sequence depends only on g's outputs, so results
/// are identical across standard libraries. O(1) expected calls to g.
template <class URBG>
std::uint64_t random_u64(URBG& g) {
  using R = typename URBG::result_type;
  constexpr std::uint64_t range = static_cast<std::uint64_t>(URBG::max() - URBG::min());
  static_assert(range > 0, "random_u64: the engine must produce at least two values");
  if constexpr (range == ~std::uint64_t{0}) {
    return static_cast<std::uint64_t>(g() - URBG::min());
  } else {
    // b = number of whole bits per draw: 2^b - 1 <= range.
    constexpr int bits = [] {
      int b = 1;
      while (b < 63 && ((std::uint64_t{1} << (b + 1)) - 1) <= range) ++b;
      return b;
    }();
    constexpr std::uint64_t limit = std::uint64_t{1} << bits;
    std::uint64_t out = 0;
    for (int have = 0; have < 64; have += bits) {
      std::uint64_t x = 0;
      do {
        x = static_cast<std::uint64_t>(static_cast<R>(g() - URBG::min()));
      } while (x >= limit);
      out = (out << bits) | x;
    }
    return out;
  }
}

/// A uniformly distributed integer in [0, n), n >= 1 (n = 1: 0, no draw), without modulo bias
/// (rejection below 2^64 mod n). Fully specified here, unlike
/// std::uniform_int_distribution. O(1) expected.
template <class URBG>
std::uint64_t uniform_index(URBG& g, std::uint64_t n) {
  LONGROPE_ASSERT(n >= 1);
  if (n <= 1) return 0;
  const std::uint64_t threshold = (~n + 1) % n;  // 2^64 mod n
  for (;;) {
    const std::uint64_t x = random_u64(g);
    if (x >= threshold) return x % n;
  }
}

/// A uniform double in [0, 1) with 53 random bits. O(1).
template <class URBG>
double uniform_unit(URBG& g) {
  return static_cast<double>(random_u64(g) >> 11) * 0x1.0p-53;
}

/// True with probability p (p <= 0: never, p >= 1: always, each consuming one draw). O(1).
template <class URBG>
bool bernoulli(URBG& g, double p) {
  return uniform_unit(g) < p;
}

}  // namespace longrope
