#include "pipeline/kv_ram_cache.h"

#include "core/error.h"

namespace kvrag {

int64_t ChunkMemory::bytes() const {
  return static_cast<int64_t>(kv.bytes.size()) + hidden.size() * static_cast<int64_t>(sizeof(float));
}

KvRamCache::KvRamCache(int64_t max_bytes) : max_bytes_(max_bytes) {
  KVRAG_CHECK(max_bytes >= 0, kInvalidArgument,
              "kv cache bytes must be >= 0 (0 disables the cache), got ", max_bytes);
}

std::shared_ptr<const ChunkMemory> KvRamCache::get(int64_t chunk_id) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto found = by_id_.find(chunk_id);
  if (found == by_id_.end()) {
    ++misses_;
    return nullptr;
  }
  ++hits_;
  lru_.splice(lru_.begin(), lru_, found->second);
  return found->second->memory;
}

void KvRamCache::put(int64_t chunk_id, std::shared_ptr<const ChunkMemory> memory) {
  KVRAG_CHECK(memory != nullptr, kInternal, "KvRamCache::put of a null memory for chunk ",
              chunk_id);
  const int64_t bytes = memory->bytes();
  std::lock_guard<std::mutex> lock(mutex_);
  auto found = by_id_.find(chunk_id);
  if (found != by_id_.end()) {
    bytes_used_ -= found->second->bytes;
    lru_.erase(found->second);
    by_id_.erase(found);
  }
  if (bytes > max_bytes_) return;
  lru_.push_front(Entry{chunk_id, std::move(memory), bytes});
  by_id_[chunk_id] = lru_.begin();
  bytes_used_ += bytes;
  evict_to_fit();
}

void KvRamCache::erase(int64_t chunk_id) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto found = by_id_.find(chunk_id);
  if (found == by_id_.end()) return;
  bytes_used_ -= found->second->bytes;
  lru_.erase(found->second);
  by_id_.erase(found);
}

void KvRamCache::clear() {
  std::lock_guard<std::mutex> lock(mutex_);
  lru_.clear();
  by_id_.clear();
  bytes_used_ = 0;
}

void KvRamCache::evict_to_fit() {
  while (bytes_used_ > max_bytes_ && !lru_.empty()) {
    bytes_used_ -= lru_.back().bytes;
    by_id_.erase(lru_.back().chunk_id);
    lru_.pop_back();
  }
}

int64_t KvRamCache::bytes_used() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return bytes_used_;
}

int64_t KvRamCache::entries() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return static_cast<int64_t>(lru_.size());
}

int64_t KvRamCache::hits() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return hits_;
}

int64_t KvRamCache::misses() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return misses_;
}

}  // namespace kvrag
