// longrope: header-only LongRoPE positional interpolation. MIT License.
#pragma once
#if !defined(LONGROPE_INTERNAL_INCLUDE)
#error "longrope/detail/rotate_simd.hpp is internal: include <longrope/rotate.hpp> or <longrope/longrope.hpp>"
#endif

// Vector kernels of the rotation (temporary: forwards to the scalar reference).

#include "rotate_scalar.hpp"

namespace longrope::detail {

inline void token_coeffs_vector(const rope_frequencies& f, std::int64_t p, float* c, float* s) noexcept {
  token_coeffs_scalar(f, p, c, s);
}

template <class T>
struct vector_head_kernel {
  using C = compute_t<T>;
  const C* c = nullptr;
  const C* s = nullptr;
  int n = 0;
  pair_layout layout = pair_layout::half_split;
  void prepare(const C* cc, const C* ss, int pairs, pair_layout lay) noexcept {
    c = cc;
    s = ss;
    n = pairs;
    layout = lay;
  }
  void apply(const T* in, T* out, std::ptrdiff_t head_dim) const noexcept {
    rotate_head_scalar(in, out, c, s, n, layout, head_dim);
  }
};

}  // namespace longrope::detail
