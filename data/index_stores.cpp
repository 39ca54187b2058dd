#include "data/index_stores.h"

#include "core/error.h"
#include "data/redis_cluster_blob_store.h"
#include "data/sqlite_blob_store.h"
#include "data/sqlite_metadata_store.h"

namespace kvrag {

IndexStores open_index_stores(const std::string& location) {
  auto database = std::make_shared<SqliteStore>(location);
  return {std::make_unique<SqliteMetadataStore>(database),
          std::make_unique<SqliteBlobStore>(database)};
}

std::unique_ptr<BlobStore> open_blob_store(const std::string& uri) {
  KVRAG_CHECK(uri.starts_with("redis://"), kInvalidArgument,
              "a blob store URI is redis://host:port,..., got '", uri, "'");
  return std::make_unique<RedisClusterBlobStore>(parse_redis_cluster_uri(uri));
}

}  // namespace kvrag
