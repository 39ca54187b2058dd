// MetadataStore over a PostgreSQL schema (data/postgres_store.h): documents,
// chunks and meta in their tables, lexical search by PostgreSQL full-text
// search, the generation in meta 'store_generation'. The semantics are
// SqliteMetadataStore's; where PostgreSQL differs, the method says so.
#pragma once

#include <memory>

#include "data/metadata_store.h"
#include "data/postgres_store.h"

namespace kvrag {

class PostgresMetadataStore final : public MetadataStore {
 public:
  explicit PostgresMetadataStore(std::shared_ptr<PostgresStore> store);

  // The URI without its password.
  const std::string& location() const override { return store_->location(); }
  std::optional<std::string> meta(const std::string& key) const override;
  void set_meta(const std::string& key, const std::string& value) override;
  // A PostgreSQL transaction behind the schema's writer lock, which writers
  // in every process take in turn (data/postgres_store.h). A failed
  // statement caught inside `body` dooms the whole transaction unless a
  // nested write_transaction around it rolls it back.
  void write_transaction(const std::function<void()>& body) override;
  // One statement that increments the stored value, so that two writers
  // can never read the same value even outside write_transaction.
  int64_t advance_generation() override;

  std::optional<DocumentRecord> find_document(const std::string& external_id) const override;
  DocumentRecord document(int64_t id) const override;
  int64_t add_document(const Document& doc, const std::string& content_hash) override;
  // Chunks, their blobs (chunk_blobs) and lexical entries go with the document.
  std::vector<int64_t> remove_document(int64_t id) override;
  int64_t add_chunk(int64_t document_id, const NewChunk& chunk) override;

  std::optional<StoredEncoding> find_encoding(const std::string& content_hash) const override;
  ChunkRecord chunk(int64_t id) const override;
  std::vector<ChunkRecord> document_chunks(int64_t document_id) const override;
  std::vector<int64_t> chunk_documents(const std::vector<int64_t>& chunk_ids) const override;
  std::vector<std::vector<float>> chunk_embeddings(
      const std::vector<int64_t>& chunk_ids) const override;
  // Reads the embeddings in batches of ascending id and calls `fn` between
  // reads, holding no connection: each batch sees what was committed when
  // it was read, not one snapshot of the whole store.
  void for_each_embedding(
      const std::function<void(int64_t chunk_id, std::span<const float> embedding)>& fn)
      const override;
  // Score ts_rank of PostgreSQL full-text search (English stemming and stop
  // words, diacritics folded): a query word on the stop list ("the", "of")
  // matches nothing, where FTS5 matches it with a small weight.
  std::vector<std::pair<int64_t, double>> search_lexical(const std::string& query,
                                                         int64_t k) const override;
  // storage_bytes: the schema's tables with their indexes and TOAST,
  // cached memories included.
  MetadataStats stats() const override;

 private:
  std::shared_ptr<PostgresStore> store_;
};

}  // namespace kvrag
