// longrope: header-only LongRoPE positional interpolation. MIT License.
#pragma once

/// \file owned_table.hpp
/// owned_table: a cos/sin table that owns its memory, sizes itself for a
/// rope_frequencies and a range of positions, fills itself (fill_table) and
/// hands out the views rotate() takes. Replaces the two matrix_views an
/// engine otherwise builds by hand:
///
///     const longrope::owned_table table(f, {0, n_ctx});        // rows 0 .. n_ctx-1
///     longrope::rotate_qk(f, table.view(), q, k, pos, tokens);  // table.view() is a rope_table
///
/// Layout: rows = positions, columns = pairs in pair order, float, row stride
/// rounded up to 16 floats and the base aligned to 64 bytes, so every row
/// starts on a cache line (what the vector kernels load fastest).
/// Values: exactly fill_table's (attention factor applied, n_hat respected,
/// angle_precision as given). The table does not keep a reference to the
/// frequencies: use it with the rope_frequencies it was filled for.
///
/// Thread safety: const members only read; share a filled table freely.
/// Allocation: only in the constructor and in fill() when more rows or a
/// wider row are needed than the current capacity (never in view()).

#include <cstddef>
#include <cstdint>
#include <new>
#include <memory>
#include <string>
#include <utility>

#include "config.hpp"
#include "error.hpp"
#include "frequencies.hpp"
#include "rotate.hpp"
#include "table.hpp"
#include "view.hpp"

namespace longrope {

class owned_table {
 public:
  /// An empty table (rows() == 0).
  owned_table() = default;

  /// Sized and filled for positions [range.begin, range.end) of f.
  /// Throws as fill().
  owned_table(const rope_frequencies& f, position_range range, angle_precision prec = angle_precision::exact) {
    fill(f, range, prec);
  }

  /// Moves the memory; `o` is left empty.
  owned_table(owned_table&& o) noexcept { swap(o); }
  owned_table& operator=(owned_table&& o) noexcept {
    owned_table tmp(std::move(o));
    swap(tmp);
    return *this;
  }
  void swap(owned_table& o) noexcept {
    std::swap(cos_, o.cos_);
    std::swap(sin_, o.sin_);
    std::swap(capacity_, o.capacity_);
    std::swap(rows_, o.rows_);
    std::swap(pairs_, o.pairs_);
    std::swap(stride_, o.stride_);
    std::swap(first_, o.first_);
  }
  /// Deep copy.
  owned_table(const owned_table& o) { *this = o; }
  owned_table& operator=(const owned_table& o) {
    if (this == &o) return *this;
    reserve(o.rows_, o.pairs_);
    rows_ = o.rows_;
    pairs_ = o.pairs_;
    stride_ = o.stride_;
    first_ = o.first_;
    const std::size_t n = static_cast<std::size_t>(rows_) * static_cast<std::size_t>(stride_);
    for (std::size_t i = 0; i < n; ++i) {
      cos_.get()[i] = o.cos_.get()[i];
      sin_.get()[i] = o.sin_.get()[i];
    }
    return *this;
  }

  /// Re-sizes (reusing the memory when it is large enough) and fills rows for
  /// positions [range.begin, range.end) of f. Preconditions (checked,
  /// longrope::error "longrope.argument"): 0 <= range.begin <= range.end,
  /// range.end - 1 <= f.max_position(), rows * pairs fits in memory
  /// (std::bad_alloc otherwise). O(rows * pairs).
  void fill(const rope_frequencies& f, position_range range, angle_precision prec = angle_precision::exact) {
    if (range.begin < 0 || range.end < range.begin) {
      detail::argument_fail("owned_table: invalid range [" + std::to_string(range.begin) + ", " +
                            std::to_string(range.end) + ")");
    }
    if (range.size() > 0 && range.end - 1 > f.max_position()) {
      detail::argument_fail("owned_table: position " + std::to_string(range.end - 1) + " gives angles above 2^29 rad (rope_frequencies::max_angle)");
    }
    const auto rows = static_cast<std::ptrdiff_t>(range.size());
    reserve(rows, f.pairs());
    rows_ = rows;
    pairs_ = f.pairs();
    stride_ = padded(pairs_);
    first_ = range.begin;
    if (rows_ > 0) {
      fill_table<float>(f, range, matrix_view<float>(cos_.get(), rows_, pairs_, stride_),
                        matrix_view<float>(sin_.get(), rows_, pairs_, stride_), prec);
    }
  }

  /// The table as rotate() and rotate_qk() take it. O(1), noexcept.
  rope_table view() const noexcept {
    rope_table t;
    t.cos = cos_view();
    t.sin = sin_view();
    t.first_position = first_;
    return t;
  }
  /// The cos rows (att * cos), rows() x pairs(), row stride row_stride().
  matrix_view<const float> cos_view() const noexcept { return make_view(cos_.get()); }
  /// The sin rows (att * sin).
  matrix_view<const float> sin_view() const noexcept { return make_view(sin_.get()); }

  std::ptrdiff_t rows() const noexcept { return rows_; }
  int pairs() const noexcept { return pairs_; }
  std::ptrdiff_t row_stride() const noexcept { return stride_; }
  /// The position of row 0.
  std::int64_t first_position() const noexcept { return first_; }
  /// Positions covered: [first_position(), first_position() + rows()).
  position_range positions() const noexcept { return {first_, first_ + rows_}; }
  /// Bytes held (both tables, capacity included).
  std::size_t bytes() const noexcept { return 2 * capacity_ * sizeof(float); }

 private:
  struct aligned_delete {
    void operator()(float* p) const noexcept { ::operator delete[](p, std::align_val_t(64)); }
  };
  using buffer = std::unique_ptr<float[], aligned_delete>;

  static std::ptrdiff_t padded(int pairs) noexcept { return (static_cast<std::ptrdiff_t>(pairs) + 15) / 16 * 16; }

  static buffer allocate(std::size_t n) {
    return buffer(static_cast<float*>(::operator new[](n * sizeof(float), std::align_val_t(64))));
  }

  void reserve(std::ptrdiff_t rows, int pairs) {
    const std::size_t need = static_cast<std::size_t>(rows) * static_cast<std::size_t>(padded(pairs));
    if (rows > 0 && static_cast<std::size_t>(rows) > static_cast<std::size_t>(-1) / sizeof(float) / 2 /
                                                          static_cast<std::size_t>(padded(pairs))) {
      throw std::bad_alloc();
    }
    if (need <= capacity_ && cos_) return;
    buffer c = allocate(need == 0 ? 1 : need);
    buffer s = allocate(need == 0 ? 1 : need);
    cos_ = std::move(c);
    sin_ = std::move(s);
    capacity_ = need;
  }

  matrix_view<const float> make_view(const float* p) const noexcept {
    matrix_view<const float> v;
    v.data = p;
    v.rows = rows_;
    v.cols = pairs_;
    v.row_stride = stride_;
    return v;
  }

  buffer cos_;
  buffer sin_;
  std::size_t capacity_ = 0;
  std::ptrdiff_t rows_ = 0;
  int pairs_ = 0;
  std::ptrdiff_t stride_ = 0;
  std::int64_t first_ = 0;
};

}  // namespace longrope
