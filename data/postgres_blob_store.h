// BlobStore over the chunk_blobs table of a PostgreSQL schema
// (data/postgres_store.h), on the metadata's connection: a put inside
// PostgresMetadataStore's write_transaction commits or rolls back with it,
// and a chunk's blob goes with its chunk row when its document is removed
// (ON DELETE CASCADE). The PostgreSQL analogue of SqliteBlobStore: an index
// all in PostgreSQL, for when no separate blob store is named.
#pragma once

#include <memory>

#include "data/blob_store.h"
#include "data/postgres_store.h"

namespace kvrag {

class PostgresBlobStore final : public BlobStore {
 public:
  explicit PostgresBlobStore(std::shared_ptr<PostgresStore> store);

  // A chunk id the chunks table lacks is Error(kInvalidArgument) (foreign key).
  void put(int64_t chunk_id, const MemoryBlob& blob) override;
  // One query for all ids; each blob is copied once, from libpq's binary
  // result into the buffer returned.
  std::vector<std::optional<Bytes>> get_many(std::span<const int64_t> chunk_ids) const override;
  void remove(std::span<const int64_t> chunk_ids) override;
  BlobStats stats() const override;

 private:
  std::shared_ptr<PostgresStore> store_;
};

}  // namespace kvrag
