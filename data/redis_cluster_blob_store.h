// BlobStore on a Redis Cluster (data/redis_cluster.h): the cached memories
// of an index spread over the cluster's masters, for serving nodes that do
// not hold the index themselves.
//
// Keys, under a namespace `prefix` that isolates one index from another:
//   <prefix>:blob:{<bucket>}:<chunk id>   a hash: data (the blob's bytes),
//                                         tokens (its memory tokens)
//   <prefix>:stats:{<bucket>}             a hash: bytes, tokens (Σ of the
//                                         bucket's blobs)
// with bucket = chunk id mod kBuckets. The hash tag {<bucket>} puts a blob
// and its bucket's counters in one slot, so that a put or a removal updates
// both in one atomic script: stats() stays exact when a blob is replaced
// or removed twice, and costs kBuckets small reads rather than a scan of
// every blob (which would read as many keys as the index has chunks).
// 1024 buckets still spread the blobs evenly over the slots, so over the
// masters. kBuckets is part of the key format: changing it orphans every
// stored blob.
//
// A separate store: put writes at once, before the metadata commits (see
// BlobStore::put), and removing a document leaves its blobs until remove()
// is called with its chunk ids.
#pragma once

#include <memory>
#include <string>

#include "data/blob_store.h"
#include "data/redis_cluster.h"

namespace kvrag {

struct RedisClusterBlobStoreOptions {
  redis::ClusterOptions cluster;
  // The namespace of the index: letters, digits, '_', '-' and '.', so that
  // it can never form a hash tag or a SCAN pattern of its own.
  std::string prefix = "kvrag";
};

// Options from `redis://host:port[,host:port...][?prefix=NAME][&replica_reads=1]`;
// anything else is Error(kInvalidArgument) saying what is wrong.
RedisClusterBlobStoreOptions parse_redis_cluster_uri(const std::string& uri);

class RedisClusterBlobStore final : public BlobStore {
 public:
  static constexpr int kBuckets = 1024;

  // Connects to the cluster (redis::Cluster's constructor says what it
  // throws); an invalid prefix is Error(kInvalidArgument).
  explicit RedisClusterBlobStore(RedisClusterBlobStoreOptions options);
  ~RedisClusterBlobStore() override;

  // put and remove run one script per blob (see the key scheme above);
  // remove pipelines them, one pipeline per node.
  void put(int64_t chunk_id, const MemoryBlob& blob) override;
  // One pipeline per node, all sent before any reply is read. The bytes
  // pass through hiredis's reply on their way into the buffers returned:
  // one copy more than SqliteBlobStore's. A key holding something other
  // than a blob is Error(kFormat).
  std::vector<std::optional<Bytes>> get_many(std::span<const int64_t> chunk_ids) const override;
  void remove(std::span<const int64_t> chunk_ids) override;
  BlobStats stats() const override;

  // Deletes every key of the namespace, on every master: what removing the
  // whole index leaves to do here.
  void drop();

  const std::string& prefix() const { return prefix_; }

 private:
  std::string blob_key(int64_t chunk_id) const;
  std::string stats_key(int bucket) const;
  std::vector<std::string> namespace_keys(const redis::NodeAddress& master);

  const std::string prefix_;
  // mutable: reading is a const operation of the store, not of its client.
  mutable redis::Cluster cluster_;
};

}  // namespace kvrag
