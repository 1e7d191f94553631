// longrope: header-only LongRoPE positional interpolation. MIT License.
#pragma once

/// \file isa.hpp
/// Which vector instruction set the rotation and table kernels run on, chosen
/// at run time.
///
/// Kernels compiled into every translation unit that includes longrope:
///   x86-64 with GCC or Clang   scalar, avx2 (AVX2+FMA+F16C) and avx512
///                              (AVX-512 F+BW+VL+DQ), each ISA's kernels compiled
///                              with function-level target attributes, so a
///                              consumer built with default flags (no -march)
///                              still gets the vector kernels its CPU has;
///   x86-64, other compilers    scalar, plus the ISA the compiler flags enable;
///   AArch64                    scalar and neon;
///   LONGROPE_FORCE_SCALAR      scalar only.
///
/// bfloat16 storage on the avx512 path: where the CPU also has AVX512-BF16
/// (CPUID.(EAX=7,ECX=1):EAX bit 5; Cooper Lake, Sapphire Rapids, Zen 4 and
/// later), x86-64 GCC >= 10 / Clang >= 11 builds, whatever their flags, run a
/// second AVX-512 kernel set for bfloat16 only, whose stores narrow with one
/// vcvtneps2bf16 instead of an integer rounding sequence (same bits, except that
/// float denormals below 1.2e-38 become zero). active_isa() still reports
/// avx512. Cache-resident bfloat16 rotation runs about 1.7x faster with it
/// (docs/performance.md).
///
/// Selection, once per process (thread-safe, cached): the best ISA that is
/// compiled in and that the CPU reports (__builtin_cpu_supports, which also
/// checks the OS saves the vector registers); an ISA the translation unit's
/// own flags already require (-march=native, -mavx2 ...) is taken as present.
/// The environment variable LONGROPE_ISA=scalar|avx2|avx512|neon, read at the
/// first selection, lowers it (a request above what the machine supports gets
/// the best supported ISA below it, an unknown name is ignored; both print one
/// line on stderr). set_isa() overrides both at any time.
///
/// Every kernel of a given ISA has one body (its own namespace, the same
/// target attributes in every translation unit), so translation units compiled
/// with different -march flags can be linked together without breaking the
/// one-definition rule.

#include <cstdint>
#include <string>

#include "error.hpp"

#define LONGROPE_INTERNAL_INCLUDE
#include "detail/isa_select.hpp"
#undef LONGROPE_INTERNAL_INCLUDE

namespace longrope {

/// A kernel instruction set.
enum class isa : std::uint8_t { scalar = 0, avx2 = 1, avx512 = 2, neon = 3 };

/// "scalar", "avx2", "avx512" or "neon".
inline const char* isa_name(isa i) noexcept {
  switch (i) {
    case isa::avx2: return "avx2";
    case isa::avx512: return "avx512";
    case isa::neon: return "neon";
    case isa::scalar: break;
  }
  return "scalar";
}

/// True when kernels for `i` are compiled in and the CPU can run them
/// (scalar: always).
inline bool isa_supported(isa i) noexcept { return detail::isa_usable(static_cast<int>(i)); }

/// The best supported ISA (what active_isa() returns without LONGROPE_ISA and set_isa).
inline isa best_isa() noexcept { return static_cast<isa>(detail::isa_best()); }

/// The ISA the kernels run on now. O(1) after the first call (one relaxed atomic load).
inline isa active_isa() noexcept { return static_cast<isa>(detail::isa_active()); }

/// Makes every later kernel call in the process run on `i` (for tests,
/// benchmarks, or to pin a path). Throws longrope::error "longrope.argument"
/// when `i` is not supported here. Calls already running keep the ISA they
/// started with; concurrent callers see the change at their next call.
inline void set_isa(isa i) {
  if (!isa_supported(i)) {
    LONGROPE_THROW("longrope.argument", std::string("set_isa: ") + isa_name(i) + " is not supported on this machine (" +
                                            "best: " + isa_name(best_isa()) + ")");
  }
  detail::isa_set(static_cast<int>(i));
}

/// Drops a set_isa() override: back to LONGROPE_ISA or the best supported ISA.
inline void reset_isa() noexcept { detail::isa_set(detail::isa_default()); }

}  // namespace longrope
