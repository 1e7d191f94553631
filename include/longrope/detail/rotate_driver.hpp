// longrope: header-only LongRoPE positional interpolation. MIT License.
#pragma once
#if !defined(LONGROPE_INTERNAL_INCLUDE)
#error "longrope/detail/rotate_driver.hpp is internal: include <longrope/rotate.hpp> or <longrope/longrope.hpp>"
#endif

// Argument checks and the token loop shared by every rotate/rotate_qk overload.
// The loop is templated on the kernel path so the tests can run the scalar
// reference and the vector kernels side by side in one binary.

#include <algorithm>
#include <cstdint>
#include <string>
#include <type_traits>

#include "../config.hpp"
#include "../error.hpp"
#include "../frequencies.hpp"
#include "../view.hpp"
#include "rotate_scalar.hpp"
#include "rotate_simd.hpp"

namespace longrope::detail {

template <class T>
struct identity {
  using type = T;
};
/// Blocks template argument deduction (so heads_view<T> converts to heads_view<const T>).
template <class T>
using identity_t = typename identity<T>::type;

/// scalar: the reference loop (detail::portable); vector: the active ISA's
/// loop (isa_active(), which is the reference too where no vector ISA runs).
enum class kernel_path { scalar, vector };
inline constexpr kernel_path default_kernel_path = kernel_path::vector;

/// Runs the loop of ISA `isa` (an ISA without kernels here: the reference).
template <class T, class TT>
void rotate_loops_isa(int isa, const rope_frequencies& f, const table_ref_t<TT>* tab, const io_pair<T>& q,
                      const io_pair<T>* k, positions_view pos, token_range tokens, bool inverse) noexcept {
  switch (isa) {
#if defined(LONGROPE_KERNELS_AVX512)
    case kIsaAvx512:
#if defined(LONGROPE_KERNELS_AVX512BF16)
      if constexpr (std::is_same_v<T, Eigen::bfloat16>) {
        if (avx512_bf16_kernels_active())
          return avx512bf16::rotate_loops<T, TT>(f, tab, q, k, pos, tokens, inverse);
      }
#endif
      return avx512::rotate_loops<T, TT>(f, tab, q, k, pos, tokens, inverse);
#endif
#if defined(LONGROPE_KERNELS_AVX2)
    case kIsaAvx2: return avx2::rotate_loops<T, TT>(f, tab, q, k, pos, tokens, inverse);
#endif
#if defined(LONGROPE_KERNELS_NEON)
    case kIsaNeon: return neon::rotate_loops<T, TT>(f, tab, q, k, pos, tokens, inverse);
#endif
    default: return portable::rotate_loops<T, TT>(f, tab, q, k, pos, tokens, inverse);
  }
}

// ---------------------------------------------------------------------------
// Checks (all before the loops)

inline std::string rot_msg(const char* fn, const std::string& what) { return std::string(fn) + ": " + what; }

// Messages are built only on failure: the checks run on every decode call.
template <class T>
void check_heads_view(const char* fn, const char* name, const heads_view<T>& v, const rope_frequencies& f) {
  if (v.batch < 0 || v.tokens < 0 || v.heads < 0 || v.head_dim < 0) {
    argument_fail(rot_msg(fn, std::string(name) + ": negative extent"));
  }
  if (v.batch_stride < 0 || v.token_stride < 0 || v.head_stride < 0) {
    argument_fail(rot_msg(fn, std::string(name) + ": negative stride"));
  }
  if (v.head_dim != f.head_dim()) {
    argument_fail(rot_msg(fn, std::string(name) + ".head_dim is " + std::to_string(v.head_dim) +
                                  ", the frequencies have head_dim " + std::to_string(f.head_dim()) + " (rotary_dim " +
                                  std::to_string(f.rotary_dim()) + ")"));
  }
  if (v.data == nullptr && v.batch > 0 && v.tokens > 0 && v.heads > 0 && v.head_dim > 0) {
    argument_fail(rot_msg(fn, std::string(name) + ": null data"));
  }
}

template <class T>
void check_io(const char* fn, const char* in_name, const char* out_name, const io_pair<T>& io,
              const rope_frequencies& f) {
  check_heads_view(fn, in_name, io.in, f);
  check_heads_view(fn, out_name, io.out, f);
  if (io.in.batch != io.out.batch || io.in.tokens != io.out.tokens || io.in.heads != io.out.heads) {
    argument_fail(rot_msg(fn, std::string(in_name) + " and " + out_name + " differ in batch, tokens or heads"));
  }
}

template <class TT>
void check_table(const char* fn, const table_ref_t<TT>& t, const rope_frequencies& f) {
  if (t.cos.rows != t.sin.rows) argument_fail(rot_msg(fn, "table.cos and table.sin have different row counts"));
  if (t.cos.cols < f.pairs() || t.sin.cols < f.pairs()) {
    argument_fail(rot_msg(fn, "table has fewer columns than pairs() = " + std::to_string(f.pairs())));
  }
  if (t.cos.rows < 0 || t.cos.row_stride < t.cos.cols || t.sin.row_stride < t.sin.cols) {
    argument_fail(rot_msg(fn, "table: invalid extents or strides"));
  }
  if ((t.cos.data == nullptr || t.sin.data == nullptr) && t.cos.rows > 0 && f.pairs() > 0) {
    argument_fail(rot_msg(fn, "table: null data"));
  }
  if (t.first_position < 0) argument_fail(rot_msg(fn, "table.first_position is negative"));
}

/// Checks every precondition, then runs path P. TT: the table's entry type
/// (not deduced: a null table pointer means table-free).
template <class T, kernel_path P = default_kernel_path, class TT = float>
void rotate_entry(const rope_frequencies& f, const table_ref_t<identity_t<TT>>* tab, const io_pair<T>& q,
                  const io_pair<T>* k, positions_view pos, token_range tokens, bool inverse, const char* fn) {
  static_assert(is_storage_type_v<T>, "rotate: T must be float, double, Eigen::half or Eigen::bfloat16");
  static_assert(is_table_type_v<TT>, "rotate: table entries must be float, Eigen::half or Eigen::bfloat16");
  const bool qk = k != nullptr;
  check_io(fn, qk ? "q_in" : "in", qk ? "q_out" : "out", q, f);
  if (qk) {
    check_io(fn, "k_in", "k_out", *k, f);
    if (k->out.batch != q.out.batch || k->out.tokens != q.out.tokens) {
      argument_fail(rot_msg(fn, "q and k differ in batch or tokens"));
    }
  }
  if (f.pairs() > kMaxRotaryPairs) {
    argument_fail(rot_msg(fn, "pairs() = " + std::to_string(f.pairs()) + " exceeds the kernel limit " +
                                  std::to_string(kMaxRotaryPairs)));
  }
  if (tokens.begin < 0 || tokens.end < tokens.begin || tokens.end > q.out.tokens) {
    argument_fail(rot_msg(fn, "token range [" + std::to_string(tokens.begin) + ", " + std::to_string(tokens.end) +
                                  ") is not inside [0, " + std::to_string(q.out.tokens) + ")"));
  }
  if (tab != nullptr) check_table(fn, *tab, f);
  if (tokens.size() == 0 || q.out.batch == 0) return;
  if (pos.empty()) argument_fail(rot_msg(fn, "null positions"));
  if (pos.batch_stride < 0) argument_fail(rot_msg(fn, "positions.batch_stride is negative"));
  // Angles p * f_i must stay below rope_frequencies::max_angle (2^29 rad), where
  // the double angle keeps float accuracy (far inside the reductions' range);
  // rope_frequencies precomputes the matching position bound.
  const std::int64_t max_position = f.max_position();
  for (std::ptrdiff_t b = 0; b < q.out.batch; ++b) {
    for (std::ptrdiff_t t = tokens.begin; t < tokens.end; ++t) {
      const std::int64_t p = pos(b, t);
      if (p < 0) {
        argument_fail(rot_msg(fn, "position " + std::to_string(p) + " of (batch " + std::to_string(b) + ", token " +
                                      std::to_string(t) + ") is negative"));
      }
      if (p > max_position) {
        argument_fail(rot_msg(fn, "position " + std::to_string(p) + " of (batch " + std::to_string(b) + ", token " +
                                      std::to_string(t) + ") gives angles above 2^29 rad (rope_frequencies::max_angle)"));
      }
      if (tab != nullptr && (p < tab->first_position || p - tab->first_position >= tab->cos.rows)) {
        argument_fail(rot_msg(fn, "position " + std::to_string(p) + " of (batch " + std::to_string(b) +
                                      ", token " + std::to_string(t) + ") is outside the table's [" +
                                      std::to_string(tab->first_position) + ", " +
                                      std::to_string(tab->first_position + tab->cos.rows) + ")"));
      }
    }
  }
  rotate_loops_isa<T, TT>(P == kernel_path::scalar ? kIsaScalar : isa_active(), f, tab, q, k, pos, tokens, inverse);
}

}  // namespace longrope::detail
