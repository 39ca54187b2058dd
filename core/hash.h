// A fast non-cryptographic 64-bit hash, for fingerprints of model files and
// content hashes of chunks: equal inputs give equal hashes on every machine.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace kvrag {

// Hash of `size` bytes, continuing from `seed` (chain calls to hash several
// pieces as one stream of pieces).
uint64_t hash_bytes(const void* data, size_t size, uint64_t seed = 0);
inline uint64_t hash_string(std::string_view s, uint64_t seed = 0) {
  return hash_bytes(s.data(), s.size(), seed);
}
// Hash of a whole file's bytes (read through mmap); Error(kIo) if unreadable.
uint64_t hash_file(const std::string& path, uint64_t seed = 0);
// 16 lower-case hex digits.
std::string hex64(uint64_t value);

}  // namespace kvrag
