// libFuzzer target: a stored K/V blob as decode_kv_blob reads it. Each input
// is decoded as given, then with its checksum field made right, so the
// fuzzer also reaches the size checks and the payload decoding behind the
// checksum. Only kvrag::Error may come out.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "core/crc32c.h"
#include "core/error.h"
#include "data/kv_blob.h"

namespace {

// Header layout of data/kv_blob.h: the CRC-32C is its seventh u32.
constexpr size_t kHeaderBytes = 32;
constexpr size_t kCrcOffset = 24;

void decode(const std::vector<uint8_t>& blob) {
  try {
    kvrag::decode_kv_blob(blob, "fuzzed blob");
  } catch (const kvrag::Error&) {
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::vector<uint8_t> blob(data, data + size);
  decode(blob);
  if (size < kHeaderBytes) return 0;
  std::memset(blob.data() + kCrcOffset, 0, sizeof(uint32_t));
  const uint32_t crc = kvrag::crc32c(blob.data(), blob.size());
  std::memcpy(blob.data() + kCrcOffset, &crc, sizeof(crc));
  decode(blob);
  return 0;
}
