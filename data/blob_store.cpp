#include "data/blob_store.h"

namespace kvrag {

std::optional<Bytes> BlobStore::get(int64_t chunk_id) const {
  return std::move(get_many({&chunk_id, 1}).front());
}

void BlobStore::get_each(std::span<const int64_t> chunk_ids, const BlobSink& take) const {
  std::vector<std::optional<Bytes>> blobs = get_many(chunk_ids);
  for (size_t i = 0; i < blobs.size(); ++i) take(i, std::move(blobs[i]));
}

}  // namespace kvrag
