// longrope: header-only LongRoPE positional interpolation. MIT License.
#pragma once

/// \file error.hpp
/// The single exception type thrown by longrope, and the macros that throw it.
///
/// Every message starts with a stable id in brackets, then names the offending
/// field, e.g. "[longrope.config] longrope.long_factor: expected 48 values (rotary_dim / 2), got 47".
/// Ids in use: longrope.config (invalid rope_config), longrope.argument (bad
/// function argument: size, range), longrope.json (config I/O), longrope.search,
/// longrope.io (files).
///
/// Validation happens where objects are built (rope_config::validate, the
/// rope_frequencies constructor, view constructors); the hot kernels are noexcept
/// and check their preconditions only with LONGROPE_ASSERT (active unless NDEBUG).
///
/// Builds with -fno-exceptions: LONGROPE_THROW prints the message to stderr and
/// calls std::abort() instead of throwing.

#include <stdexcept>
#include <string>

#if defined(__cpp_exceptions) || defined(__EXCEPTIONS) || defined(_CPPUNWIND)
#define LONGROPE_HAS_EXCEPTIONS 1
#else
#define LONGROPE_HAS_EXCEPTIONS 0
#include <cstdio>
#include <cstdlib>
#endif

namespace longrope {

/// Thrown for invalid configurations and arguments. Derives from
/// std::invalid_argument so generic handlers catch it.
class error : public std::invalid_argument {
 public:
  /// \param id stable identifier such as "longrope.config"
  /// \param message human-readable text naming the field and the problem
  error(const std::string& id, const std::string& message)
      : std::invalid_argument("[" + id + "] " + message), id_(id) {}

  /// The stable id (without brackets).
  const std::string& id() const noexcept { return id_; }

 private:
  std::string id_;
};

}  // namespace longrope

#if LONGROPE_HAS_EXCEPTIONS
#define LONGROPE_THROW(id, message) throw ::longrope::error((id), (message))
#else
#define LONGROPE_THROW(id, message)                                              \
  do {                                                                           \
    std::fprintf(stderr, "[%s] %s\n", std::string(id).c_str(),                   \
                 std::string(message).c_str());                                  \
    std::abort();                                                                \
  } while (0)
#endif

/// Debug-only precondition check for hot paths; define LONGROPE_ASSERT before
/// including longrope to route it to your own handler.
#ifndef LONGROPE_ASSERT
#ifdef NDEBUG
#define LONGROPE_ASSERT(cond) ((void)0)
#else
#include <cassert>
#define LONGROPE_ASSERT(cond) assert(cond)
#endif
#endif
