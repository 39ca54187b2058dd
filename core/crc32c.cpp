#include "core/crc32c.h"

#include <array>
#include <cstring>

#if defined(__x86_64__)
#include <immintrin.h>
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

// x^(8·bytes) modulo the polynomial: what appending `bytes` bytes does to a
// CRC's remainder, by repeated squaring.
uint32_t shift_for_bytes(size_t bytes) {
  uint32_t result = 1u << 31;  // x^0
  uint32_t square = 1u << 23;  // x^8, one byte
  for (; bytes != 0; bytes >>= 1) {
    if (bytes & 1) result = multiply_mod_p(square, result);
    square = multiply_mod_p(square, square);
  }
  return result;
}

// The CRC of A followed by B, from crc(A), crc(B) and B's length (zlib's
// crc32_combine, for this polynomial).
uint32_t crc32c_combine(uint32_t crc_a, uint32_t crc_b, size_t size_b) {
  return multiply_mod_p(shift_for_bytes(size_b), crc_a) ^ crc_b;
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

bool cpu_has_sse42() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("sse4.2");
}
#endif

}  // namespace

uint32_t crc32c(const void* data, size_t size, uint32_t crc) {
#if defined(__x86_64__)
  static const bool hardware = cpu_has_sse42();
  if (hardware) return crc32c_sse42(static_cast<const uint8_t*>(data), size, crc);
#endif
  return crc32c_portable(data, size, crc);
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
