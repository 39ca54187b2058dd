// What the hand-vectorised kernels of core/ share (core/packed_rows.cpp,
// core/int8_matrix.cpp): the target attribute of their AVX2 functions, the
// run-time check that this CPU runs them, and horizontal sums. Internal to
// core/: the public headers choose kernels through their own structs.
#pragma once

#if defined(__x86_64__)
#include <immintrin.h>

#include <cstdint>

// Functions compiled for AVX2 + FMA + F16C inside a portable build; call them
// only when cpu_has_avx2() says so.
#define KVRAG_AVX2 __attribute__((target("avx2,f16c,fma")))
// Functions that also use AVX-512 (foundation and DQ); call them only when
// cpu_has_avx512() says so.
#define KVRAG_AVX512 __attribute__((target("avx512f,avx512dq,avx2,f16c,fma")))

namespace kvrag {

// Whether this CPU has AVX2, FMA and F16C (asked once, at first call).
bool cpu_has_avx2();
// Whether this CPU and OS run AVX-512 F and DQ besides cpu_has_avx2().
bool cpu_has_avx512();

KVRAG_AVX2 inline float horizontal_sum(__m256 v) {
  const __m128 quad = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  const __m128 pair = _mm_add_ps(quad, _mm_movehl_ps(quad, quad));
  return _mm_cvtss_f32(_mm_add_ss(pair, _mm_movehdup_ps(pair)));
}

KVRAG_AVX2 inline int32_t horizontal_sum(__m256i v) {
  const __m128i quad = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  const __m128i pair = _mm_add_epi32(quad, _mm_unpackhi_epi64(quad, quad));
  return _mm_cvtsi128_si32(_mm_add_epi32(pair, _mm_shuffle_epi32(pair, 1)));
}

// Not _mm512_reduce_add_ps nor _mm512_castps512_ps256: GCC 12 warns of an
// uninitialised value inside them.
KVRAG_AVX512 inline float horizontal_sum(__m512 v) {
  return horizontal_sum(_mm256_add_ps(_mm512_extractf32x8_ps(v, 0), _mm512_extractf32x8_ps(v, 1)));
}

}  // namespace kvrag

#endif
