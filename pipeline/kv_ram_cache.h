// A RAM cache of chunk memories, so that the chunks retrieved again and
// again skip the blob store read and the blob's checks. K/V stay in the dtype
// they are stored in (f16 takes half the bytes of f32, int8 about a
// quarter): the decoder converts them as it reads them. Least recently used
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

#include "core/packed_rows.h"
#include "core/tensor.h"

namespace kvrag {

// One chunk's memory as read from its blob (see CacheGranularity in
// pipeline/index_settings.h): exactly one of the two members is filled.
struct ChunkMemory {
  // kKv indexes: the checked blob, kept packed; matrix 2l is layer l's K,
  // 2l + 1 its V, each (tokens, inner_dim).
  PackedMatrices kv;
  Tensor hidden;  // kHidden indexes: the encoder output, (tokens, d_model)

  int64_t tokens() const { return hidden.empty() ? kv.matrices.at(0).rows : hidden.rows(); }
  // Bytes held: the packed blob, or the hidden states' floats (what the
  // cache's limit counts).
  int64_t bytes() const;
};

class KvRamCache {
 public:
  // `max_bytes` 0 disables the cache (get always misses, put keeps nothing);
  // negative is Error(kInvalidArgument).
  explicit KvRamCache(int64_t max_bytes);

  // The memory of `chunk_id`, or nullptr; counts a hit or a miss (a disabled
  // cache counts misses too, so the counters say how many reads the blob store served).
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
