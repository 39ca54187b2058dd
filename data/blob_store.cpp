#include "data/blob_store.h"

namespace kvrag {

std::optional<std::vector<uint8_t>> BlobStore::get(int64_t chunk_id) const {
  return std::move(get_many({&chunk_id, 1}).front());
}

}  // namespace kvrag
