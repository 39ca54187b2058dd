#include "data/blob_store.h"

namespace kvrag {

std::optional<Bytes> BlobStore::get(int64_t chunk_id) const {
  return std::move(get_many({&chunk_id, 1}).front());
}

}  // namespace kvrag
