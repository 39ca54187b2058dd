#include "data/index_stores.h"

#include <optional>

#include "core/error.h"
#include "data/postgres_blob_store.h"
#include "data/postgres_metadata_store.h"
#include "data/redis_cluster_blob_store.h"
#include "data/sqlite_blob_store.h"
#include "data/sqlite_metadata_store.h"

namespace kvrag {

IndexStores open_index_stores(const std::string& location) {
  if (is_postgres_uri(location)) return open_postgres_index_stores(location);
  auto database = std::make_shared<SqliteStore>(location);
  return {std::make_unique<SqliteMetadataStore>(database),
          std::make_unique<SqliteBlobStore>(database)};
}

bool is_store_uri(const std::string& location) { return is_postgres_uri(location); }

std::string displayed_location(const std::string& location) {
  return is_postgres_uri(location) ? parse_postgres_uri(location).display : location;
}

IndexStores open_postgres_index_stores(const std::string& uri) {
  const PostgresLocation parsed = parse_postgres_uri(uri);
  std::optional<RedisClusterBlobStoreOptions> redis;
  if (!parsed.blobs.empty()) {
    // Parsed before connecting to anything: a bad URI is the first error.
    redis = parse_redis_cluster_uri(parsed.blobs);
    // Two indexes (schemas) on one Redis Cluster must not share keys.
    if (parsed.blobs.find("prefix=") == std::string::npos) redis->prefix = parsed.schema;
  }
  auto database = std::make_shared<PostgresStore>(uri);
  auto metadata = std::make_unique<PostgresMetadataStore>(database);
  if (!redis) return {std::move(metadata), std::make_unique<PostgresBlobStore>(database)};
  return {std::move(metadata), std::make_unique<RedisClusterBlobStore>(std::move(*redis))};
}

std::unique_ptr<BlobStore> open_blob_store(const std::string& uri) {
  KVRAG_CHECK(uri.starts_with("redis://"), kInvalidArgument,
              "a blob store URI is redis://host:port,..., got '", uri, "'");
  return std::make_unique<RedisClusterBlobStore>(parse_redis_cluster_uri(uri));
}

}  // namespace kvrag
