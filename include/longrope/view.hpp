// longrope: header-only LongRoPE positional interpolation. MIT License.
#pragma once

/// \file view.hpp
/// Non-owning views over caller memory (pointer + extents + strides, in
/// elements). longrope never allocates in a kernel: callers own every buffer and
/// pass views; the helpers below say how large a buffer must be.

#include <cstddef>
#include <cstdint>
#include <string>
#include <type_traits>

#include "error.hpp"

namespace longrope {

/// A half-open range of positions [begin, end), begin >= 0.
struct position_range {
  std::int64_t begin = 0;
  std::int64_t end = 0;
  std::int64_t size() const noexcept { return end > begin ? end - begin : 0; }
};

/// A half-open range of token indices [begin, end) inside a view; every kernel
/// takes one so an engine can split a call across its own threads (disjoint
/// ranges touch disjoint memory).
struct token_range {
  std::ptrdiff_t begin = 0;
  std::ptrdiff_t end = 0;
  std::ptrdiff_t size() const noexcept { return end > begin ? end - begin : 0; }
};

/// A row-major 2-D view: element (r, c) at data[r * row_stride + c].
/// Used for cos/sin tables: rows = positions, cols = rotary pairs.
template <class T>
struct matrix_view {
  T* data = nullptr;
  std::ptrdiff_t rows = 0;
  std::ptrdiff_t cols = 0;
  std::ptrdiff_t row_stride = 0;  ///< elements between rows, >= cols

  matrix_view() = default;
  /// Contiguous rows (row_stride = cols).
  matrix_view(T* d, std::ptrdiff_t r, std::ptrdiff_t c) : matrix_view(d, r, c, c) {}
  /// Throws longrope::error ("longrope.argument") on negative extents, a
  /// row_stride below cols, or a null pointer with a non-empty extent.
  matrix_view(T* d, std::ptrdiff_t r, std::ptrdiff_t c, std::ptrdiff_t stride)
      : data(d), rows(r), cols(c), row_stride(stride) {
    if (r < 0 || c < 0) LONGROPE_THROW("longrope.argument", "matrix_view: negative extent");
    if (stride < c) LONGROPE_THROW("longrope.argument", "matrix_view: row_stride < cols");
    if (d == nullptr && r * c > 0) LONGROPE_THROW("longrope.argument", "matrix_view: null data");
  }

  T* row(std::ptrdiff_t r) const noexcept { return data + r * row_stride; }
  T& operator()(std::ptrdiff_t r, std::ptrdiff_t c) const noexcept { return data[r * row_stride + c]; }

  /// A read-only view of the same memory (matrix_view<T> -> matrix_view<const T>).
  template <class U = T, std::enable_if_t<!std::is_const_v<U>, int> = 0>
  operator matrix_view<const U>() const noexcept {
    matrix_view<const U> v;
    v.data = data;
    v.rows = rows;
    v.cols = cols;
    v.row_stride = row_stride;
    return v;
  }
};

/// A view of query or key activations, logically [batch][tokens][heads][head_dim]
/// with channels contiguous and arbitrary (non-negative) strides for the other
/// three axes, in elements. Covers the layouts engines use:
///   token-major  [batch][tokens][heads][head_dim]  (transformers before transpose, vLLM, ggml)
///   head-major   [batch][heads][tokens][head_dim]  (transformers after transpose, KV caches)
/// and any padded or sliced variant of them.
template <class T>
struct heads_view {
  T* data = nullptr;
  std::ptrdiff_t batch = 1;
  std::ptrdiff_t tokens = 0;
  std::ptrdiff_t heads = 0;
  std::ptrdiff_t head_dim = 0;
  std::ptrdiff_t batch_stride = 0;
  std::ptrdiff_t token_stride = 0;
  std::ptrdiff_t head_stride = 0;

  /// Pointer to the first channel of (b, t, h).
  T* at(std::ptrdiff_t b, std::ptrdiff_t t, std::ptrdiff_t h) const noexcept {
    return data + b * batch_stride + t * token_stride + h * head_stride;
  }

  /// A read-only view of the same memory (heads_view<T> -> heads_view<const T>).
  template <class U = T, std::enable_if_t<!std::is_const_v<U>, int> = 0>
  operator heads_view<const U>() const noexcept {
    return {data, batch, tokens, heads, head_dim, batch_stride, token_stride, head_stride};
  }

  /// Heads [h0, h1) of the same memory (all batch rows and tokens), e.g. to
  /// split a decode step across threads by heads. Throws longrope::error
  /// ("longrope.argument") unless 0 <= h0 <= h1 <= heads.
  heads_view head_range(std::ptrdiff_t h0, std::ptrdiff_t h1) const {
    if (h0 < 0 || h1 < h0 || h1 > heads) {
      LONGROPE_THROW("longrope.argument", "heads_view::head_range: [" + std::to_string(h0) + ", " +
                                              std::to_string(h1) + ") is not inside [0, " + std::to_string(heads) +
                                              ")");
    }
    heads_view v = *this;
    v.data = h1 > h0 ? data + h0 * head_stride : data;
    v.heads = h1 - h0;
    return v;
  }
};

/// Contiguous [batch][tokens][heads][head_dim].
template <class T>
heads_view<T> token_major(T* data, std::ptrdiff_t batch, std::ptrdiff_t tokens, std::ptrdiff_t heads,
                          std::ptrdiff_t head_dim) noexcept {
  return {data, batch, tokens, heads, head_dim, tokens * heads * head_dim, heads * head_dim, head_dim};
}

/// Contiguous [batch][heads][tokens][head_dim].
template <class T>
heads_view<T> head_major(T* data, std::ptrdiff_t batch, std::ptrdiff_t heads, std::ptrdiff_t tokens,
                         std::ptrdiff_t head_dim) noexcept {
  return {data, batch, tokens, heads, head_dim, heads * tokens * head_dim, head_dim, tokens * head_dim};
}

/// Positions of the tokens of a heads_view: position of (b, t) is
/// data[b * batch_stride + t], from int64 (data) or int32 (data32, as ggml and
/// llama.cpp keep them; no conversion copy) storage: exactly one of the two
/// pointers is set. batch_stride 0 shares one row across the batch.
struct positions_view {
  const std::int64_t* data = nullptr;
  std::ptrdiff_t batch_stride = 0;
  const std::int32_t* data32 = nullptr;

  positions_view() = default;
  positions_view(const std::int64_t* d, std::ptrdiff_t bs) noexcept : data(d), batch_stride(bs) {}
  positions_view(const std::int32_t* d, std::ptrdiff_t bs) noexcept : batch_stride(bs), data32(d) {}
  /// No positions (only valid with an empty token range).
  positions_view(std::nullptr_t, std::ptrdiff_t bs) noexcept : batch_stride(bs) {}

  /// True when neither pointer is set.
  bool empty() const noexcept { return data == nullptr && data32 == nullptr; }
  std::int64_t operator()(std::ptrdiff_t b, std::ptrdiff_t t) const noexcept {
    const std::ptrdiff_t i = b * batch_stride + t;
    return data32 != nullptr ? static_cast<std::int64_t>(data32[i]) : data[i];
  }
};

namespace detail {
inline void argument_fail(const std::string& what) { LONGROPE_THROW("longrope.argument", what); }
}  // namespace detail

}  // namespace longrope
