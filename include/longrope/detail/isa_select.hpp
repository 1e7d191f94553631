// longrope: header-only LongRoPE positional interpolation. MIT License.
#pragma once
#if !defined(LONGROPE_INTERNAL_INCLUDE)
#error "longrope/detail/isa_select.hpp is internal: include <longrope/isa.hpp> or <longrope/longrope.hpp>"
#endif

// Which kernel sets are compiled in, the target regions they are compiled in,
// and the once-per-process choice among them (see isa.hpp).
//
//   LONGROPE_KERNELS_AVX2 / _AVX512 / _NEON   the kernel set exists in this TU
//   LONGROPE_TARGET_AVX2_BEGIN ... LONGROPE_TARGET_END
//       every function defined in between is compiled for that ISA
//       (GCC: #pragma GCC target, Clang: #pragma clang attribute), whatever the
//       translation unit's own flags; empty where the flags already enable it.
//
// ISA numbers are those of longrope::isa: 0 scalar, 1 avx2, 2 avx512, 3 neon.

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#if defined(__x86_64__) || defined(_M_X64) || defined(__i386__)
#define LONGROPE_X86 1
#endif

#if !defined(LONGROPE_FORCE_SCALAR)
#if defined(LONGROPE_X86) && (defined(__GNUC__) || defined(__clang__))
// Function-level target attributes: both sets always.
#define LONGROPE_KERNELS_AVX2 1
#define LONGROPE_KERNELS_AVX512 1
#define LONGROPE_CPU_QUERY 1
#if defined(__clang__)
#define LONGROPE_TARGET_AVX2_BEGIN \
  _Pragma("clang attribute push(__attribute__((target(\"avx2,fma,f16c\"))), apply_to = function)")
// (One string literal: _Pragma does not concatenate.)
// clang-format off
#define LONGROPE_TARGET_AVX512_BEGIN _Pragma("clang attribute push(__attribute__((target(\"avx512f,avx512bw,avx512vl,avx512dq,avx2,fma,f16c\"))), apply_to = function)")
// clang-format on
#define LONGROPE_TARGET_END _Pragma("clang attribute pop")
#else
#define LONGROPE_TARGET_AVX2_BEGIN _Pragma("GCC push_options") _Pragma("GCC target(\"avx2,fma,f16c\")")
#define LONGROPE_TARGET_AVX512_BEGIN \
  _Pragma("GCC push_options") _Pragma("GCC target(\"avx512f,avx512bw,avx512vl,avx512dq,avx2,fma,f16c\")")
#define LONGROPE_TARGET_END _Pragma("GCC pop_options")
#endif
// The AVX-512 kernels for bfloat16 storage once more, with AVX512-BF16's
// one-instruction narrowing (vcvtneps2bf16) in their stores, for CPUs that
// have it (Cooper Lake, Sapphire Rapids, Zen 4 and later); taken at run time
// by the avx512 path for bfloat16 only. Compiled whatever the flags (a -march
// with AVX512-BF16 included), so the kernels of both sets have one body in
// every translation unit.
#if defined(__clang__) ? __clang_major__ >= 11 : __GNUC__ >= 10
#define LONGROPE_KERNELS_AVX512BF16 1
#if defined(__clang__)
// clang-format off
#define LONGROPE_TARGET_AVX512BF16_BEGIN _Pragma("clang attribute push(__attribute__((target(\"avx512f,avx512bw,avx512vl,avx512dq,avx512bf16,avx2,fma,f16c\"))), apply_to = function)")
// clang-format on
#else
#define LONGROPE_TARGET_AVX512BF16_BEGIN \
  _Pragma("GCC push_options")            \
      _Pragma("GCC target(\"avx512f,avx512bw,avx512vl,avx512dq,avx512bf16,avx2,fma,f16c\")")
#endif
#endif
#elif defined(LONGROPE_X86)
// Other compilers: only what the flags enable (no per-function targets).
#if defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)
#define LONGROPE_KERNELS_AVX2 1
#endif
#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__) && defined(__AVX512DQ__)
#define LONGROPE_KERNELS_AVX512 1
#endif
#define LONGROPE_TARGET_AVX2_BEGIN
#define LONGROPE_TARGET_AVX512_BEGIN
#define LONGROPE_TARGET_END
#elif defined(__ARM_NEON) && defined(__aarch64__)
#define LONGROPE_KERNELS_NEON 1
#endif
#endif  // !LONGROPE_FORCE_SCALAR

#if defined(LONGROPE_KERNELS_AVX2) || defined(LONGROPE_KERNELS_AVX512)
#include <immintrin.h>
#endif
#if defined(LONGROPE_CPU_QUERY)
#include <cpuid.h>
#endif
#if defined(LONGROPE_KERNELS_NEON)
#include <arm_neon.h>
#endif
#if defined(LONGROPE_KERNELS_AVX2) || defined(LONGROPE_KERNELS_AVX512) || defined(LONGROPE_KERNELS_NEON)
#define LONGROPE_KERNELS_ANY 1
#endif

namespace longrope::detail {

inline constexpr int kIsaScalar = 0;
inline constexpr int kIsaAvx2 = 1;
inline constexpr int kIsaAvx512 = 2;
inline constexpr int kIsaNeon = 3;

/// The kernel set is compiled in (this TU's macros; identical in every TU of
/// a GCC/Clang x86 build).
inline constexpr bool isa_compiled(int i) noexcept {
  switch (i) {
    case kIsaScalar: return true;
#if defined(LONGROPE_KERNELS_AVX2)
    case kIsaAvx2: return true;
#endif
#if defined(LONGROPE_KERNELS_AVX512)
    case kIsaAvx512: return true;
#endif
#if defined(LONGROPE_KERNELS_NEON)
    case kIsaNeon: return true;
#endif
    default: return false;
  }
}

#if defined(LONGROPE_CPU_QUERY)
/// CPUID.1:ECX bit 29 (Clang's __builtin_cpu_supports has no "f16c").
inline bool cpu_has_f16c() noexcept {
  unsigned a = 0, b = 0, c = 0, d = 0;
  return __get_cpuid(1, &a, &b, &c, &d) != 0 && ((c >> 29) & 1u) != 0;
}
#endif

/// The CPU (and OS) can run ISA i. Compile-time knowledge (-march flags) counts.
inline bool isa_cpu_has(int i) noexcept {
  switch (i) {
    case kIsaScalar: return true;
    case kIsaAvx2:
#if defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)
      return true;
#elif defined(LONGROPE_CPU_QUERY)
      __builtin_cpu_init();
      return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && cpu_has_f16c();
#else
      return false;
#endif
    case kIsaAvx512:
#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__) && defined(__AVX512DQ__)
      return true;
#elif defined(LONGROPE_CPU_QUERY)
      __builtin_cpu_init();
      return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
             __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
             __builtin_cpu_supports("fma") && cpu_has_f16c();
#else
      return false;
#endif
    case kIsaNeon:
#if defined(__ARM_NEON) && defined(__aarch64__)
      return true;
#else
      return false;
#endif
    default: return false;
  }
}

inline bool isa_usable(int i) noexcept { return isa_compiled(i) && isa_cpu_has(i); }

/// The avx512 path stores bfloat16 with AVX512-BF16's narrowing instruction
/// through the avx512bf16 kernel set when the CPU reports the extension
/// (CPUID.(EAX=7,ECX=1):EAX bit 5) and avx512_bf16_native_set(false) has not
/// switched it off (tests run both from one binary); else with the integer
/// rounding of the avx512 set (compilers without per-function targets: the
/// instruction where the flags enable it). Both round to nearest even; the
/// instruction also flushes float denormals (|x| < 1.2e-38) to zero.
inline std::atomic<bool>& avx512_bf16_native_slot() noexcept {
  static std::atomic<bool> on{true};
  return on;
}

inline bool avx512_bf16_cpu() noexcept {
#if defined(LONGROPE_KERNELS_AVX512BF16)
  static const bool has = [] {
    unsigned a = 0, b = 0, c = 0, d = 0;
    // Sub-leaf 1 exists when sub-leaf 0 reports a highest sub-leaf >= 1.
    if (!isa_cpu_has(kIsaAvx512) || __get_cpuid_count(7, 0, &a, &b, &c, &d) == 0 || a < 1) return false;
    return __get_cpuid_count(7, 1, &a, &b, &c, &d) != 0 && ((a >> 5) & 1u) != 0;
  }();
  return has;
#elif defined(__AVX512BF16__)
  return true;
#else
  return false;
#endif
}

/// The avx512bf16 kernel set runs for bfloat16 storage on the avx512 path.
inline bool avx512_bf16_kernels_active() noexcept {
#if defined(LONGROPE_KERNELS_AVX512BF16)
  return avx512_bf16_cpu() && avx512_bf16_native_slot().load(std::memory_order_relaxed);
#else
  return false;
#endif
}

/// Switches the avx512bf16 kernel set off (false) or back on (true, where the CPU has it).
inline void avx512_bf16_native_set(bool on) noexcept {
  avx512_bf16_native_slot().store(on, std::memory_order_relaxed);
}

/// The best usable ISA; cached after the first call.
inline int isa_best() noexcept {
  static const int best = [] {
    for (int i : {kIsaAvx512, kIsaAvx2, kIsaNeon}) {
      if (isa_usable(i)) return i;
    }
    return kIsaScalar;
  }();
  return best;
}

/// Rank for "at most": scalar < avx2 < avx512; neon is its own family.
inline int isa_clamp(int requested) noexcept {
  if (isa_usable(requested)) return requested;
  if (requested == kIsaAvx512 && isa_usable(kIsaAvx2)) return kIsaAvx2;
  return kIsaScalar;
}

/// LONGROPE_ISA applied to isa_best(); read once.
inline int isa_default() noexcept {
  static const int chosen = [] {
    const int best = isa_best();
    const char* env = std::getenv("LONGROPE_ISA");
    if (env == nullptr || *env == '\0') return best;
    const char* names[] = {"scalar", "avx2", "avx512", "neon"};
    for (int i = 0; i < 4; ++i) {
      if (std::strcmp(env, names[i]) == 0) {
        const int got = isa_clamp(i);
        if (got != i) {
          std::fprintf(stderr, "longrope: LONGROPE_ISA=%s is not supported on this machine; using %s\n", env,
                       names[got]);
        }
        // Never above what auto-selection would pick.
        return got;
      }
    }
    std::fprintf(stderr, "longrope: LONGROPE_ISA=%s is not one of scalar, avx2, avx512, neon; using %s\n", env,
                 names[best]);
    return best;
  }();
  return chosen;
}

/// The override slot: -1 until set_isa/reset_isa, then the ISA in force.
inline std::atomic<int>& isa_override() noexcept {
  static std::atomic<int> slot{-1};
  return slot;
}

inline int isa_active() noexcept {
  const int o = isa_override().load(std::memory_order_relaxed);
  return o >= 0 ? o : isa_default();
}

inline void isa_set(int i) noexcept { isa_override().store(i, std::memory_order_relaxed); }

}  // namespace longrope::detail
