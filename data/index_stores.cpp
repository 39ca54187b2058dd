#include "data/index_stores.h"

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

IndexStores open_postgres_index_stores(const std::string& uri) {
  const PostgresLocation parsed = parse_postgres_uri(uri);
  KVRAG_CHECK(parsed.blobs.empty(), kInvalidArgument, parsed.display,
              ": blobs= names a separate blob store, which this build cannot open yet; leave it "
              "out to keep the blobs in PostgreSQL");
  auto database = std::make_shared<PostgresStore>(uri);
  return {std::make_unique<PostgresMetadataStore>(database),
          std::make_unique<PostgresBlobStore>(database)};
}

std::unique_ptr<BlobStore> open_blob_store(const std::string& uri) {
  KVRAG_CHECK(uri.starts_with("redis://"), kInvalidArgument,
              "a blob store URI is redis://host:port,..., got '", uri, "'");
  return std::make_unique<RedisClusterBlobStore>(parse_redis_cluster_uri(uri));
}

}  // namespace kvrag
