// MetadataStore over store.sqlite (data/sqlite_store.h): documents, chunks
// and meta in their tables, lexical search by BM25 through FTS5, the
// generation in meta 'store_generation'. Transactions are SQLite's (BEGIN
// IMMEDIATE, nested ones savepoints); threads take the store's lock in turn.
#pragma once

#include <memory>

#include "data/metadata_store.h"
#include "data/sqlite_store.h"

namespace kvrag {

class SqliteMetadataStore final : public MetadataStore {
 public:
  explicit SqliteMetadataStore(std::shared_ptr<SqliteStore> store);

  const std::string& location() const override { return store_->path(); }
  std::optional<std::string> meta(const std::string& key) const override;
  void set_meta(const std::string& key, const std::string& value) override;
  void write_transaction(const std::function<void()>& body) override;
  int64_t advance_generation() override;

  std::optional<DocumentRecord> find_document(const std::string& external_id) const override;
  DocumentRecord document(int64_t id) const override;
  int64_t add_document(const Document& doc, const std::string& content_hash) override;
  // Chunks, their blobs (chunk_kv) and FTS rows go with the document.
  std::vector<int64_t> remove_document(int64_t id) override;
  int64_t add_chunk(int64_t document_id, const NewChunk& chunk) override;

  std::optional<StoredEncoding> find_encoding(const std::string& content_hash) const override;
  ChunkRecord chunk(int64_t id) const override;
  std::vector<ChunkRecord> document_chunks(int64_t document_id) const override;
  std::vector<int64_t> chunk_documents(const std::vector<int64_t>& chunk_ids) const override;
  std::vector<std::vector<float>> chunk_embeddings(
      const std::vector<int64_t>& chunk_ids) const override;
  void for_each_embedding(
      const std::function<void(int64_t chunk_id, std::span<const float> embedding)>& fn)
      const override;
  // Score −bm25() of FTS5 (porter stemming, diacritics folded).
  std::vector<std::pair<int64_t, double>> search_lexical(const std::string& query,
                                                         int64_t k) const override;
  // storage_bytes: store.sqlite and its WAL, cached memories included.
  MetadataStats stats() const override;

 private:
  std::shared_ptr<SqliteStore> store_;
};

}  // namespace kvrag
