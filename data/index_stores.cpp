#include "data/index_stores.h"

#include "data/sqlite_blob_store.h"
#include "data/sqlite_metadata_store.h"

namespace kvrag {

IndexStores open_index_stores(const std::string& location) {
  auto database = std::make_shared<SqliteStore>(location);
  return {std::make_unique<SqliteMetadataStore>(database),
          std::make_unique<SqliteBlobStore>(database)};
}

}  // namespace kvrag
