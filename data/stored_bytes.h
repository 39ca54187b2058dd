// Token ids and embeddings as the metadata stores keep them (an SQLite blob,
// a PostgreSQL bytea): their bytes in host order.
#pragma once

#include <cstdint>
#include <cstring>
#include <span>
#include <vector>

namespace kvrag {

template <typename T>
std::span<const uint8_t> as_bytes(const std::vector<T>& v) {
  return {reinterpret_cast<const uint8_t*>(v.data()), v.size() * sizeof(T)};
}

template <typename T>
std::vector<T> from_bytes(std::span<const uint8_t> bytes) {
  std::vector<T> out(bytes.size() / sizeof(T));
  if (!out.empty()) std::memcpy(out.data(), bytes.data(), out.size() * sizeof(T));
  return out;
}

}  // namespace kvrag
