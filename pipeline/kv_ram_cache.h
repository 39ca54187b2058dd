// A RAM cache of decoded chunk memories, so that the chunks retrieved again
// and again skip the SQLite read and the blob decode. Least recently used
// entries are evicted once the bytes held pass the limit.
//
// Threads: every method may be called from many threads at once (one
// internal mutex). Entries are shared_ptr<const ChunkMemory>, so a reader
// keeps its memory alive even when another thread evicts it.
#pragma once

#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <unordered_map>

#include "core/tensor.h"
#include "encoder/cross_kv.h"

namespace kvrag {

// One chunk's memory as decoded from its blob (see CacheGranularity in
// pipeline/index_settings.h): exactly one of the two members is filled.
struct ChunkMemory {
  CrossKV kv;     // kKv indexes: per decoder layer K and V, (tokens, inner_dim)
  Tensor hidden;  // kHidden indexes: the encoder output, (tokens, d_model)

  int64_t tokens() const { return hidden.empty() ? kv.tokens() : hidden.rows(); }
  // Bytes of float data held (what the cache's limit counts).
  int64_t bytes() const;
};

class KvRamCache {
 public:
  // `max_bytes` 0 disables the cache (get always misses, put keeps nothing);
  // negative is Error(kInvalidArgument).
  explicit KvRamCache(int64_t max_bytes);

  // The memory of `chunk_id`, or nullptr; counts a hit or a miss (a disabled
  // cache counts misses too, so the counters say how many reads SQLite served).
  std::shared_ptr<const ChunkMemory> get(int64_t chunk_id);
  // Inserts or replaces the entry of `chunk_id` as most recently used, then
  // evicts least recently used entries until the bytes fit. A memory larger
  // than the whole limit is not kept.
  void put(int64_t chunk_id, std::shared_ptr<const ChunkMemory> memory);
  // Drops the entry of `chunk_id` if present. Callers erase the chunks of a
  // removed or replaced document: SQLite may hand their ids out again.
  void erase(int64_t chunk_id);
  void clear();

  bool enabled() const { return max_bytes_ > 0; }
  int64_t max_bytes() const { return max_bytes_; }
  int64_t bytes_used() const;
  int64_t entries() const;
  int64_t hits() const;
  int64_t misses() const;

 private:
  struct Entry {
    int64_t chunk_id;
    std::shared_ptr<const ChunkMemory> memory;
    int64_t bytes;
  };
  void evict_to_fit();  // requires mutex_

  const int64_t max_bytes_;
  mutable std::mutex mutex_;
  std::list<Entry> lru_;  // most recently used first
  std::unordered_map<int64_t, std::list<Entry>::iterator> by_id_;
  int64_t bytes_used_ = 0;
  int64_t hits_ = 0;
  int64_t misses_ = 0;
};

}  // namespace kvrag
