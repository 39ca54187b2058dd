#include "core/crc32c.h"

#include <array>
#include <cstring>
#include <vector>

#if defined(__x86_64__)
#include <immintrin.h>

#include "core/avx2.h"
#endif

namespace kvrag {
namespace {

constexpr uint32_t kPolynomial = 0x82F63B78u;  // reflected

// Slicing-by-8 tables for the polynomial: eight bytes per step, fast enough
// that checking a 9 MB blob costs a few milliseconds.
using Tables = std::array<std::array<uint32_t, 256>, 8>;

Tables make_tables() {
  Tables t{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ kPolynomial : c >> 1;
    t[0][i] = c;
  }
  for (uint32_t i = 0; i < 256; ++i) {
    for (size_t s = 1; s < 8; ++s) t[s][i] = (t[s - 1][i] >> 8) ^ t[0][t[s - 1][i] & 0xFF];
  }
  return t;
}

// a · b modulo the polynomial, both reflected polynomials over GF(2).
uint32_t multiply_mod_p(uint32_t a, uint32_t b) {
  uint32_t product = 0;
  for (uint32_t m = 1u << 31; m != 0; m >>= 1) {
    if (a & m) product ^= b;
    b = (b & 1) ? (b >> 1) ^ kPolynomial : b >> 1;
  }
  return product;
}

// x^n modulo the polynomial, by repeated squaring.
uint32_t x_to_the(uint64_t n) {
  uint32_t result = 1u << 31;  // x^0
  uint32_t square = 1u << 30;  // x^1
  for (; n != 0; n >>= 1) {
    if (n & 1) result = multiply_mod_p(square, result);
    square = multiply_mod_p(square, square);
  }
  return result;
}

// The CRC of A followed by B, from crc(A), crc(B) and B's length (zlib's
// crc32_combine, for this polynomial).
uint32_t crc32c_combine(uint32_t crc_a, uint32_t crc_b, size_t size_b) {
  return multiply_mod_p(x_to_the(8 * uint64_t{size_b}), crc_a) ^ crc_b;
}

#if defined(__x86_64__)
// SSE 4.2's crc32 instruction computes CRC-32C itself, eight bytes per
// instruction: several times the tables' rate, which matters to the store's
// read path (every blob is checked when it is read).
__attribute__((target("sse4.2"))) uint32_t crc32c_sse42_serial(const uint8_t* p, size_t size,
                                                               uint32_t crc) {
  uint64_t c = ~crc;
  for (; size >= 8; p += 8, size -= 8) {
    uint64_t word;
    std::memcpy(&word, p, sizeof(word));  // x86 is little-endian, as the CRC's byte order
    c = _mm_crc32_u64(c, word);
  }
  auto c32 = static_cast<uint32_t>(c);
  for (; size > 0; ++p, --size) c32 = _mm_crc32_u8(c32, *p);
  return ~c32;
}

// Below this many bytes one stream; above, three.
constexpr size_t kThreeStreamsMin = 4096;

// One crc32 instruction waits 3 cycles for the one before it: three
// independent streams over the buffer's thirds keep the unit busy every
// cycle, and their CRCs are combined at the end (microseconds). Checking
// 50 of T5-base's 2.36 MB f16 K/V blobs (read_kv_blob: copy, checksum,
// finite values) took 16.2 ms, 21.9 with one stream
// (bench/micro_blob_store.cpp BM_ReadKvBlob/t5base-kv/k:50).
__attribute__((target("sse4.2"))) uint32_t crc32c_sse42(const uint8_t* p, size_t size,
                                                        uint32_t crc) {
  if (size < kThreeStreamsMin) return crc32c_sse42_serial(p, size, crc);
  const size_t third = size / 24 * 8;
  const uint8_t* b = p + third;
  const uint8_t* c = b + third;
  uint64_t ca = ~crc, cb = ~0u, cc = ~0u;
  for (size_t at = 0; at < third; at += 8) {
    uint64_t wa, wb, wc;
    std::memcpy(&wa, p + at, 8);
    std::memcpy(&wb, b + at, 8);
    std::memcpy(&wc, c + at, 8);
    ca = _mm_crc32_u64(ca, wa);
    cb = _mm_crc32_u64(cb, wb);
    cc = _mm_crc32_u64(cc, wc);
  }
  const size_t rest = size - 2 * third;  // c's third and the tail
  const uint32_t crc_c = crc32c_sse42_serial(c + third, rest - third, ~static_cast<uint32_t>(cc));
  const uint32_t crc_ab =
      crc32c_combine(~static_cast<uint32_t>(ca), ~static_cast<uint32_t>(cb), third);
  return crc32c_combine(crc_ab, crc_c, rest);
}

// Carry-less multiplication (VPCLMULQDQ) folds 256 bytes per step in four
// 64-byte accumulators, each a polynomial congruent, modulo P, to the bytes
// it has taken in: several times the crc32 instruction's 8 bytes a cycle,
// which made the checksum the largest part of reading a K/V blob (perf of
// BM_ReadKvBlob: 45 % of its time, the copy and the finite check the rest).
// The 64 bytes left at the end are one message with the same CRC as
// everything folded into them, which the crc32 instruction finishes.
constexpr size_t kFoldMin = 1024;  // below, the three streams are as fast

// x^n as a carry-less multiplicand: the reflected remainder in the upper
// half of a quadword, so that x^0 is its bit 63.
long long reflected_multiplier(uint64_t n) {
  return static_cast<long long>(uint64_t{x_to_the(n)} << 32);
}

// Per 128-bit lane, the multipliers that move a lane `bits` further on:
// its low quadword holds the message's higher-degree half, H (reflected),
// so H·x^64·x^bits ≡ H·x^(bits+63)·x, and the lane's one-bit offset of a
// carry-less product of two reflected quadwords is that last x; likewise
// the high quadword's half gets x^(bits−1).
KVRAG_AVX512_CLMUL __m512i fold_multipliers(uint64_t bits) {
  const long long high = reflected_multiplier(bits + 63), low = reflected_multiplier(bits - 1);
  return _mm512_set_epi64(low, high, low, high, low, high, low, high);
}

// acc · x^(bits of the multipliers) + next, modulo P, lane by lane.
KVRAG_AVX512_CLMUL inline __m512i fold(__m512i acc, __m512i multipliers, __m512i next) {
  return _mm512_ternarylogic_epi64(_mm512_clmulepi64_epi128(acc, multipliers, 0x00),
                                   _mm512_clmulepi64_epi128(acc, multipliers, 0x11), next, 0x96);
}

KVRAG_AVX512_CLMUL uint32_t crc32c_vpclmul(const uint8_t* p, size_t size, uint32_t crc) {
  static const __m512i by_one = fold_multipliers(512);
  static const __m512i by_four = fold_multipliers(4 * 512);
  // Starting from `crc` is the same as XORing its complement into the first
  // four bytes and starting from zero.
  __m512i a0 =
      _mm512_xor_si512(_mm512_loadu_si512(p), _mm512_maskz_set1_epi32(1, static_cast<int>(~crc)));
  __m512i a1 = _mm512_loadu_si512(p + 64), a2 = _mm512_loadu_si512(p + 128),
          a3 = _mm512_loadu_si512(p + 192);
  p += 256;
  size -= 256;
  for (; size >= 256; p += 256, size -= 256) {
    a0 = fold(a0, by_four, _mm512_loadu_si512(p));
    a1 = fold(a1, by_four, _mm512_loadu_si512(p + 64));
    a2 = fold(a2, by_four, _mm512_loadu_si512(p + 128));
    a3 = fold(a3, by_four, _mm512_loadu_si512(p + 192));
  }
  __m512i acc = fold(fold(fold(a0, by_one, a1), by_one, a2), by_one, a3);
  for (; size >= 64; p += 64, size -= 64) acc = fold(acc, by_one, _mm512_loadu_si512(p));
  alignas(64) uint8_t folded[64];
  _mm512_store_si512(folded, acc);
  return crc32c_sse42_serial(p, size, crc32c_sse42_serial(folded, 64, ~0u));
}

bool cpu_has_sse42() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("sse4.2");
}
#endif

}  // namespace

std::vector<Crc32cPath> crc32c_paths() {
  std::vector<Crc32cPath> paths;
#if defined(__x86_64__)
  if (cpu_has_avx512_clmul()) {
    paths.push_back({"vpclmulqdq", [](const void* data, size_t size, uint32_t crc) {
                       const auto* p = static_cast<const uint8_t*>(data);
                       return size >= kFoldMin ? crc32c_vpclmul(p, size, crc)
                                               : crc32c_sse42(p, size, crc);
                     }});
  }
  if (cpu_has_sse42()) {
    paths.push_back({"sse4.2", [](const void* data, size_t size, uint32_t crc) {
                       return crc32c_sse42(static_cast<const uint8_t*>(data), size, crc);
                     }});
  }
#endif
  paths.push_back({"tables", crc32c_portable});
  return paths;
}

uint32_t crc32c(const void* data, size_t size, uint32_t crc) {
  static const auto fastest = crc32c_paths().front().crc;
  return fastest(data, size, crc);
}

uint32_t crc32c_portable(const void* data, size_t size, uint32_t crc) {
  static const Tables t = make_tables();
  const auto* p = static_cast<const uint8_t*>(data);
  crc = ~crc;
  while (size >= 8) {
    // Little-endian byte order, independent of the host's.
    const uint32_t lo =
        crc ^ (uint32_t{p[0]} | uint32_t{p[1]} << 8 | uint32_t{p[2]} << 16 | uint32_t{p[3]} << 24);
    crc = t[7][lo & 0xFF] ^ t[6][(lo >> 8) & 0xFF] ^ t[5][(lo >> 16) & 0xFF] ^ t[4][lo >> 24] ^
          t[3][p[4]] ^ t[2][p[5]] ^ t[1][p[6]] ^ t[0][p[7]];
    p += 8;
    size -= 8;
  }
  while (size-- > 0) crc = (crc >> 8) ^ t[0][(crc ^ *p++) & 0xFF];
  return ~crc;
}

}  // namespace kvrag
