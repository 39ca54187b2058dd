#include "data/sqlite_blob_store.h"

#include <utility>

#include "data/sqlite.h"

namespace kvrag {

SqliteBlobStore::SqliteBlobStore(std::shared_ptr<SqliteStore> store) : store_(std::move(store)) {}

void SqliteBlobStore::put(int64_t chunk_id, const MemoryBlob& blob) {
  const auto held = store_->lock();
  sql::Statement st(store_->db(),
                    "INSERT INTO chunk_kv(chunk_id, tokens, data) VALUES(?, ?, ?) "
                    "ON CONFLICT(chunk_id) DO UPDATE SET tokens = excluded.tokens, "
                    "data = excluded.data");
  st.bind(1, chunk_id).bind(2, blob.tokens).bind_blob(3, blob.bytes).run();
}

std::vector<std::optional<Bytes>> SqliteBlobStore::get_many(
    std::span<const int64_t> chunk_ids) const {
  std::vector<std::optional<Bytes>> blobs(chunk_ids.size());
  get_each(chunk_ids, [&](size_t i, std::optional<Bytes> blob) { blobs[i] = std::move(blob); });
  return blobs;
}

void SqliteBlobStore::get_each(std::span<const int64_t> chunk_ids, const BlobSink& take) const {
  const auto held = store_->lock();
  sql::BlobReader reader(store_->db(), "chunk_kv", "data");  // chunk_id is chunk_kv's rowid
  for (size_t i = 0; i < chunk_ids.size(); ++i) take(i, reader.read(chunk_ids[i]));
}

void SqliteBlobStore::remove(std::span<const int64_t> chunk_ids) {
  const auto held = store_->lock();
  sql::Transaction txn(store_->db());
  sql::Statement st(store_->db(), "DELETE FROM chunk_kv WHERE chunk_id = ?");
  for (const int64_t id : chunk_ids) st.bind(1, id).run();
  txn.commit();
}

BlobStats SqliteBlobStore::stats() const {
  const auto held = store_->lock();
  sql::Statement st(
      store_->db(),
      "SELECT coalesce(sum(length(data)), 0), coalesce(sum(tokens), 0) FROM chunk_kv");
  st.step();
  return {.bytes = st.column_int(0), .tokens = st.column_int(1)};
}

}  // namespace kvrag
