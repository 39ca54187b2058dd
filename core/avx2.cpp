#include "core/avx2.h"

#if defined(__x86_64__)
#include <cpuid.h>

namespace kvrag {
namespace {

// clang 14's __builtin_cpu_supports knows no "f16c"; CPUID leaf 1 names it (ECX bit 29).
bool cpu_has_f16c() {
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  return __get_cpuid(1, &eax, &ebx, &ecx, &edx) != 0 && (ecx & bit_F16C) != 0;
}

}  // namespace

bool cpu_has_avx2() {
  static const bool available = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && cpu_has_f16c();
  }();
  return available;
}

bool cpu_has_avx512() {
  static const bool available = [] {
    __builtin_cpu_init();
    return cpu_has_avx2() && __builtin_cpu_supports("avx512f") &&
           __builtin_cpu_supports("avx512dq");
  }();
  return available;
}

bool cpu_has_avx512_vnni() {
  static const bool available = [] {
    __builtin_cpu_init();
    return cpu_has_avx512() && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vnni");
  }();
  return available;
}

bool cpu_has_avx512_bf16() {
  static const bool available = [] {
    // CPUID leaf 7, sub-leaf 1, EAX bit 5 (clang 14's __builtin_cpu_supports knows no
    // "avx512bf16").
    unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
    return cpu_has_avx512() && __get_cpuid_count(7, 1, &eax, &ebx, &ecx, &edx) != 0 &&
           (eax & (1u << 5)) != 0;
  }();
  return available;
}

bool cpu_has_avx512_clmul() {
  static const bool available = [] {
    __builtin_cpu_init();
    // clang 14's __builtin_cpu_supports knows no "vpclmulqdq": CPUID leaf 7, ECX bit 10.
    unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("sse4.2") &&
           __get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx) != 0 && (ecx & bit_VPCLMULQDQ) != 0;
  }();
  return available;
}

}  // namespace kvrag

#endif
