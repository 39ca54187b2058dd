#include "core/hash.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>

#include "core/error.h"

namespace kvrag {
namespace {

constexpr uint64_t kMul = 0x9E3779B97F4A7C15ull;

inline uint64_t mix(uint64_t h, uint64_t word) {
  h ^= word * kMul;
  h = (h << 27) | (h >> 37);
  return h * 0xBF58476D1CE4E5B9ull + 0x94D049BB133111EBull;
}

inline uint64_t finalize(uint64_t h) {
  h ^= h >> 31;
  h *= 0x94D049BB133111EBull;
  h ^= h >> 29;
  return h;
}

}  // namespace

uint64_t hash_bytes(const void* data, size_t size, uint64_t seed) {
  const auto* bytes = static_cast<const uint8_t*>(data);
  // Four independent lanes keep the multiply latency off the critical path.
  uint64_t lanes[4] = {seed ^ kMul, seed + 1, seed + 2, seed + 3};
  size_t i = 0;
  for (; i + 32 <= size; i += 32) {
    for (int lane = 0; lane < 4; ++lane) {
      uint64_t word;
      std::memcpy(&word, bytes + i + 8 * lane, 8);
      lanes[lane] = mix(lanes[lane], word);
    }
  }
  uint64_t h = mix(mix(mix(lanes[0], lanes[1]), lanes[2]), lanes[3]);
  for (; i + 8 <= size; i += 8) {
    uint64_t word;
    std::memcpy(&word, bytes + i, 8);
    h = mix(h, word);
  }
  uint64_t tail = 0;
  std::memcpy(&tail, bytes + i, size - i);
  h = mix(h, tail ^ (static_cast<uint64_t>(size) << 56) ^ size);
  return finalize(h);
}

uint64_t hash_file(const std::string& path, uint64_t seed) {
  const int fd = ::open(path.c_str(), O_RDONLY);
  KVRAG_CHECK(fd >= 0, kIo, path, ": cannot open: ", std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    ::close(fd);
    KVRAG_THROW(kIo, path, ": cannot stat: ", std::strerror(errno));
  }
  const size_t size = static_cast<size_t>(st.st_size);
  if (size == 0) {
    ::close(fd);
    return hash_bytes(nullptr, 0, seed);
  }
  void* map = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
  ::close(fd);
  KVRAG_CHECK(map != MAP_FAILED, kIo, path, ": cannot map: ", std::strerror(errno));
  const uint64_t h = hash_bytes(map, size, seed);
  ::munmap(map, size);
  return h;
}

std::string hex64(uint64_t value) {
  static const char* kDigits = "0123456789abcdef";
  std::string out(16, '0');
  for (int i = 15; i >= 0; --i) {
    out[i] = kDigits[value & 0xF];
    value >>= 4;
  }
  return out;
}

}  // namespace kvrag
