// Shared by the fuzz targets: the contract every target checks is that only
// longrope::error escapes the code under test and that what is accepted gives
// finite results. Any other exception, or a failed expectation, aborts, which
// libFuzzer (and the replay driver, through the abort) reports as a crash.
#pragma once

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <exception>

#include <longrope/error.hpp>

namespace longrope_fuzz {

[[noreturn]] inline void fail(const char* what) {
  std::fprintf(stderr, "fuzz target: contract violated: %s\n", what);
  std::abort();
}

inline void expect(bool ok, const char* what) {
  if (!ok) fail(what);
}

inline void expect_finite(double v, const char* what) {
  if (!std::isfinite(v)) fail(what);
}

/// Runs body(); longrope::error is the documented refusal, anything else a bug.
template <class F>
int guarded(F&& body) {
  try {
    body();
  } catch (const longrope::error&) {
    // refused cleanly
  } catch (const std::exception& e) {
    std::fprintf(stderr, "fuzz target: non-longrope exception escaped: %s\n", e.what());
    std::abort();
  } catch (...) {
    fail("unknown exception escaped");
  }
  return 0;
}

}  // namespace longrope_fuzz
