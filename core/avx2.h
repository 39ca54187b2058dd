// What the hand-vectorised kernels of core/ share (core/packed_rows.cpp,
// core/int8_matrix.cpp, core/panel_matrix.cpp): the target attributes of
// their AVX2 and AVX-512 functions, the run-time checks that this CPU runs
// them, and an integer horizontal sum. Internal to
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
// Functions that also use AVX512-BF16's bfloat16 conversions and dot
// products; call them only when cpu_has_avx512_bf16() says so.
#define KVRAG_AVX512_BF16 __attribute__((target("avx512f,avx512dq,avx512bf16,avx2,f16c,fma")))
// Functions that also use AVX-512 BW and VNNI's byte dot products; call
// them only when cpu_has_avx512_vnni() says so.
#define KVRAG_AVX512_VNNI \
  __attribute__((target("avx512f,avx512dq,avx512bw,avx512vnni,avx2,f16c,fma")))
// Functions that use AVX-512 F with 512-bit carry-less multiplication and
// SSE 4.2's crc32; call them only when cpu_has_avx512_clmul() says so.
#define KVRAG_AVX512_CLMUL __attribute__((target("avx512f,vpclmulqdq,sse4.2")))

namespace kvrag {

// Whether this CPU has AVX2, FMA and F16C (asked once, at first call).
bool cpu_has_avx2();
// Whether this CPU and OS run AVX-512 F and DQ besides cpu_has_avx2().
bool cpu_has_avx512();
// Whether this CPU and OS run AVX-512 BW and VNNI besides cpu_has_avx512().
bool cpu_has_avx512_vnni();
// Whether this CPU and OS run AVX512-BF16 besides cpu_has_avx512().
bool cpu_has_avx512_bf16();
// Whether this CPU and OS run AVX-512 F with VPCLMULQDQ, and SSE 4.2.
bool cpu_has_avx512_clmul();

KVRAG_AVX2 inline int32_t horizontal_sum(__m256i v) {
  const __m128i quad = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  const __m128i pair = _mm_add_epi32(quad, _mm_unpackhi_epi64(quad, quad));
  return _mm_cvtsi128_si32(_mm_add_epi32(pair, _mm_shuffle_epi32(pair, 1)));
}

}  // namespace kvrag

#endif
