// The SQLite store of an index folder (store.sqlite): the source of truth for
// documents, chunks, each chunk's cached memory (K/V or encoder output),
// embeddings and the FTS5 table that answers BM25 queries. WAL mode; every
// method is safe to call from several threads (SQLite serialises them).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "data/document.h"

namespace kvrag {

namespace sql {
class Database;
}

struct DocumentRecord {
  int64_t id = 0;
  std::string external_id;
  std::string title;
  std::string source;
  std::string text;
  std::string metadata_json;
  std::string content_hash;
  int64_t chunks = 0;
};

struct ChunkRecord {
  int64_t id = 0;
  int64_t document_id = 0;
  int64_t position = 0;
  std::string text;
  std::vector<int32_t> token_ids;
  std::string content_hash;
};

// A chunk to insert, with its embedding and the blob of its cached memory
// (data/kv_blob.h) already computed.
struct NewChunk {
  int64_t position = 0;
  std::string text;
  std::vector<int32_t> token_ids;
  std::string content_hash;      // of everything its cached memory depends on
  std::vector<float> embedding;  // (dim) L2-normalised
  std::vector<uint8_t> memory_blob;
  int64_t memory_tokens = 0;
};

// A previously stored chunk with the same content hash: its embedding and
// memory blob can be reused instead of encoding again.
struct StoredEncoding {
  std::vector<float> embedding;
  std::vector<uint8_t> memory_blob;
  int64_t memory_tokens = 0;
};

struct StoreStats {
  int64_t documents = 0;
  int64_t chunks = 0;
  int64_t memory_bytes = 0;     // Σ bytes of the cached memory blobs
  int64_t text_bytes = 0;       // Σ bytes of document text
  int64_t embedding_bytes = 0;  // Σ bytes of embeddings
  int64_t memory_tokens = 0;    // Σ tokens of cached memory
  int64_t file_bytes = 0;       // store.sqlite + its WAL on disk
};

class Store {
 public:
  // 2: the FTS table tokenizes with porter stemming and diacritics removal.
  static constexpr int kSchemaVersion = 2;

  // Opens or creates store.sqlite at `path` (its folder must exist), creating
  // the schema. A version 1 store is migrated in place at open (its FTS table
  // rebuilt from the chunk texts, in one transaction). A store of another
  // schema version, an SQLite database that is not a kvrag store, or a file
  // that is not a database is Error(kFormat) saying what to do; SQLite
  // failures are Error(kIo).
  explicit Store(const std::string& path);
  ~Store();

  const std::string& path() const { return path_; }

  std::optional<std::string> meta(const std::string& key) const;
  void set_meta(const std::string& key, const std::string& value);

  // Runs `body` in one write transaction (BEGIN IMMEDIATE ... COMMIT); an
  // exception rolls everything back and is rethrown. Other threads wait
  // until it ends. Nested calls (and the methods below, which each run in a
  // transaction of their own) become savepoints of the outer transaction.
  void write_transaction(const std::function<void()>& body);

  std::optional<DocumentRecord> find_document(const std::string& external_id) const;
  // Error(kNotFound) when absent.
  DocumentRecord document(int64_t id) const;
  // Inserts the document row; returns its id. An external id already
  // stored is Error(kInvalidArgument).
  int64_t add_document(const Document& doc, const std::string& content_hash);
  // Deletes the document with its chunks, memory blobs and FTS rows; returns
  // the ids of the chunks removed.
  std::vector<int64_t> remove_document(int64_t id);
  // Inserts the chunk, its memory blob and its FTS row (rowid = chunk id)
  // together; returns the chunk id. An unknown document is
  // Error(kInvalidArgument) (foreign key).
  int64_t add_chunk(int64_t document_id, const NewChunk& chunk);

  std::optional<StoredEncoding> find_encoding(const std::string& content_hash) const;
  ChunkRecord chunk(int64_t id) const;
  std::vector<ChunkRecord> document_chunks(int64_t document_id) const;
  // The memory blob of a chunk; Error(kNotFound) when absent.
  std::vector<uint8_t> memory_blob(int64_t chunk_id) const;
  // The memory blobs of `chunk_ids`, in order, read through one incremental
  // blob handle straight into their buffers; nullopt for a chunk with none.
  std::vector<std::optional<std::vector<uint8_t>>> memory_blobs(
      std::span<const int64_t> chunk_ids) const;
  // Calls `fn` for every chunk's embedding, in chunk id order.
  void for_each_embedding(
      const std::function<void(int64_t chunk_id, std::span<const float> embedding)>& fn) const;
  // BM25 over chunk text through FTS5: up to k (chunk id, score) pairs, best
  // first (equal scores by ascending id), score = −bm25() so higher is
  // better. The query's words (runs of letters and digits) are matched with
  // OR; FTS5 syntax in the query is treated as plain words. k < 0 is
  // Error(kInvalidArgument).
  std::vector<std::pair<int64_t, double>> search_bm25(const std::string& query, int64_t k) const;
  // The document id of each chunk of `chunk_ids`, in the same order (hybrid
  // fusion reads which chunks share a document); an unknown chunk id is
  // Error(kNotFound).
  std::vector<int64_t> chunk_documents(const std::vector<int64_t>& chunk_ids) const;

  // Every chunk id, ascending: what the FAISS index must hold.
  std::vector<int64_t> chunk_ids() const;
  int64_t document_count() const;
  int64_t chunk_count() const;

  StoreStats stats() const;
  // Ids of rows that lost their parent (should be none; for tests and `info`).
  int64_t orphan_rows() const;

 private:
  void create_schema();
  void migrate_from_version_1();

  std::string path_;
  std::unique_ptr<sql::Database> db_;
  mutable std::recursive_mutex mutex_;
};

}  // namespace kvrag
