// longrope: header-only LongRoPE positional interpolation. MIT License.
#pragma once

/// \file checked.hpp
/// Overflow-checked integer arithmetic for every size and offset that is
/// computed from user-supplied numbers (command-line options, file headers,
/// checkpoint fields). One rule everywhere: combine user numbers only through
/// these helpers, so a bounds check can never pass by wrapping around and an
/// error message never computes an overflowing value.
///
/// checked_add / checked_mul / checked_sub return the exact result or throw
/// longrope::error with the given id (default "longrope.argument") and the
/// message "<what>: <a> <op> <b> overflows <bits>-bit integers". They work for
/// std::int64_t and std::uint64_t (both operands of the same type). O(1).
///
/// checked_narrow<To>(v, what) converts between integer types, throwing when v
/// is outside To's range.

#include <cstdint>
#include <limits>
#include <string>
#include <type_traits>

#include "error.hpp"

namespace longrope {

namespace detail {

template <class T>
[[noreturn]] inline void overflow_fail(const std::string& what, T a, const char* op, T b, const char* id) {
  LONGROPE_THROW(id, what + ": " + std::to_string(a) + " " + op + " " + std::to_string(b) + " overflows " +
                         std::to_string(std::numeric_limits<T>::digits + (std::is_signed_v<T> ? 1 : 0)) +
                         "-bit integers");
#if !LONGROPE_HAS_EXCEPTIONS
  std::abort();
#endif
}

template <class T>
constexpr void check_checked_type() {
  static_assert(std::is_same_v<T, std::int64_t> || std::is_same_v<T, std::uint64_t>,
                "longrope::checked_*: operands must both be std::int64_t or both std::uint64_t");
}

}  // namespace detail

/// a + b, or longrope::error(id) when the sum does not fit in T.
template <class T>
T checked_add(T a, T b, const std::string& what, const char* id = "longrope.argument") {
  detail::check_checked_type<T>();
  constexpr T hi = std::numeric_limits<T>::max(), lo = std::numeric_limits<T>::min();
  if ((b > 0 && a > hi - b) || (std::is_signed_v<T> && b < 0 && a < lo - b)) detail::overflow_fail(what, a, "+", b, id);
  return static_cast<T>(a + b);
}

/// a - b, or longrope::error(id) when the difference does not fit in T.
template <class T>
T checked_sub(T a, T b, const std::string& what, const char* id = "longrope.argument") {
  detail::check_checked_type<T>();
  constexpr T hi = std::numeric_limits<T>::max(), lo = std::numeric_limits<T>::min();
  if constexpr (std::is_signed_v<T>) {
    if ((b < 0 && a > hi + b) || (b > 0 && a < lo + b)) detail::overflow_fail(what, a, "-", b, id);
  } else {
    (void)hi;
    if (b > a) detail::overflow_fail(what, a, "-", b, id);
  }
  return static_cast<T>(a - b);
}

/// a * b, or longrope::error(id) when the product does not fit in T.
template <class T>
T checked_mul(T a, T b, const std::string& what, const char* id = "longrope.argument") {
  detail::check_checked_type<T>();
  if (a == 0 || b == 0) return 0;
  constexpr T hi = std::numeric_limits<T>::max(), lo = std::numeric_limits<T>::min();
  bool bad = false;
  if constexpr (std::is_signed_v<T>) {
    if (a > 0) {
      bad = b > 0 ? a > hi / b : b < lo / a;
    } else {
      bad = b > 0 ? a < lo / b : (a != 0 && b < hi / a);
    }
  } else {
    (void)lo;
    bad = a > hi / b;
  }
  if (bad) detail::overflow_fail(what, a, "*", b, id);
  return static_cast<T>(a * b);
}

/// v converted to To, or longrope::error(id) when it is outside To's range.
template <class To, class From>
To checked_narrow(From v, const std::string& what, const char* id = "longrope.argument") {
  static_assert(std::is_integral_v<To> && std::is_integral_v<From>, "checked_narrow: integer types only");
  bool bad;
  if constexpr (std::is_signed_v<From> == std::is_signed_v<To>) {
    bad = v < std::numeric_limits<To>::min() || v > std::numeric_limits<To>::max();
  } else if constexpr (std::is_signed_v<From>) {
    bad = v < 0 || static_cast<std::make_unsigned_t<From>>(v) > std::numeric_limits<To>::max();
  } else {
    bad = v > static_cast<std::make_unsigned_t<To>>(std::numeric_limits<To>::max());
  }
  if (bad) {
    LONGROPE_THROW(id, what + ": " + std::to_string(v) + " is out of range [" +
                           std::to_string(std::numeric_limits<To>::min()) + ", " +
                           std::to_string(std::numeric_limits<To>::max()) + "]");
  }
  return static_cast<To>(v);
}

}  // namespace longrope
