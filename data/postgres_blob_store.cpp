#include "data/postgres_blob_store.h"

#include <unordered_map>
#include <utility>

namespace kvrag {

PostgresBlobStore::PostgresBlobStore(std::shared_ptr<PostgresStore> store)
    : store_(std::move(store)) {}

void PostgresBlobStore::put(int64_t chunk_id, const MemoryBlob& blob) {
  store_->write(
      "INSERT INTO chunk_blobs(chunk_id, tokens, data) VALUES($1, $2, $3) "
      "ON CONFLICT(chunk_id) DO UPDATE SET tokens = excluded.tokens, data = excluded.data",
      {chunk_id, blob.tokens, pg::Param::bytes(blob.bytes)});
}

std::vector<std::optional<Bytes>> PostgresBlobStore::get_many(
    std::span<const int64_t> chunk_ids) const {
  std::vector<std::optional<Bytes>> blobs(chunk_ids.size());
  if (chunk_ids.empty()) return blobs;
  const pg::Result rows =
      store_->read("SELECT chunk_id, data FROM chunk_blobs WHERE chunk_id = ANY($1::bigint[])",
                   {pg::int_array(chunk_ids)});
  std::unordered_map<int64_t, int> row_of;
  for (int r = 0; r < rows.rows(); ++r) row_of[rows.integer(r, 0)] = r;
  for (size_t i = 0; i < chunk_ids.size(); ++i) {
    const auto found = row_of.find(chunk_ids[i]);
    if (found == row_of.end()) continue;
    const std::span<const uint8_t> bytes = rows.bytes(found->second, 1);
    blobs[i].emplace(bytes.begin(), bytes.end());
  }
  return blobs;
}

void PostgresBlobStore::remove(std::span<const int64_t> chunk_ids) {
  if (chunk_ids.empty()) return;
  store_->write("DELETE FROM chunk_blobs WHERE chunk_id = ANY($1::bigint[])",
                {pg::int_array(chunk_ids)});
}

BlobStats PostgresBlobStore::stats() const {
  const pg::Result row = store_->read(
      "SELECT coalesce(sum(octet_length(data)), 0)::bigint, coalesce(sum(tokens), 0)::bigint "
      "FROM chunk_blobs");
  return {.bytes = row.integer(0, 0), .tokens = row.integer(0, 1)};
}

}  // namespace kvrag
