// BlobStore over the chunk_kv table of store.sqlite (data/sqlite_store.h),
// on the metadata's connection: a put inside SqliteMetadataStore's
// write_transaction commits or rolls back with it, and a chunk's blob goes
// with its chunk row when its document is removed (ON DELETE CASCADE).
#pragma once

#include <memory>

#include "data/blob_store.h"
#include "data/sqlite_store.h"

namespace kvrag {

class SqliteBlobStore final : public BlobStore {
 public:
  explicit SqliteBlobStore(std::shared_ptr<SqliteStore> store);

  // A chunk id the chunks table lacks is Error(kInvalidArgument) (foreign key).
  void put(int64_t chunk_id, const MemoryBlob& blob) override;
  // Read through one incremental blob handle (sqlite3_blob_reopen from row
  // to row), each value straight from the pages into its buffer.
  std::vector<std::optional<Bytes>> get_many(std::span<const int64_t> chunk_ids) const override;
  // As get_many, `take` called after each read (holding the store's lock).
  void get_each(std::span<const int64_t> chunk_ids, const BlobSink& take) const override;
  bool reads_on_own_core() const override { return true; }
  void remove(std::span<const int64_t> chunk_ids) override;
  BlobStats stats() const override;

 private:
  std::shared_ptr<SqliteStore> store_;
};

}  // namespace kvrag
