// The metadata of an index behind one interface: documents, chunks (text,
// token ids, embedding), lexical search over the chunk texts, meta keys and
// the generation counter. Everything an index holds except the chunks'
// cached memories (data/blob_store.h) and the dense vectors built from the
// embeddings (retriever/vector_index.h).
//
// Implementations: SqliteMetadataStore (store.sqlite of an index folder,
// data/sqlite_metadata_store.h) and PostgresMetadataStore (a schema of a
// PostgreSQL database, data/postgres_metadata_store.h). Every method may be
// called from several threads; an implementation serialises what it must.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "data/document.h"

namespace kvrag {

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

// A chunk to insert, with its embedding already computed. Its cached memory
// goes to the BlobStore under the chunk id add_chunk returns.
struct NewChunk {
  int64_t position = 0;
  std::string text;
  std::vector<int32_t> token_ids;
  std::string content_hash;      // of everything its cached memory depends on
  std::vector<float> embedding;  // (dim) L2-normalised
};

// A stored chunk with a given content hash: its embedding, and the chunk id
// its cached memory is kept under, can be reused instead of encoding again.
struct StoredEncoding {
  int64_t chunk_id = 0;
  std::vector<float> embedding;
};

struct MetadataStats {
  int64_t documents = 0;
  int64_t chunks = 0;
  int64_t text_bytes = 0;       // Σ bytes of document text
  int64_t embedding_bytes = 0;  // Σ bytes of embeddings
  // Bytes the store takes where it lives (store.sqlite and its WAL on disk,
  // cached memories included when they live there too).
  int64_t storage_bytes = 0;
};

// The meta key of the generation counter.
inline constexpr const char* kGenerationMetaKey = "store_generation";

class MetadataStore {
 public:
  virtual ~MetadataStore() = default;

  // Where the store lives (a file path, a URI), for messages.
  virtual const std::string& location() const = 0;

  // A value of the meta table (schema version, model, settings), or nullopt.
  virtual std::optional<std::string> meta(const std::string& key) const = 0;
  virtual void set_meta(const std::string& key, const std::string& value) = 0;

  // Runs `body` in one write transaction; an exception rolls back every
  // write `body` made through this store and is rethrown. Writers wait for
  // each other; readers see the store before or after, never in between.
  // Nested calls roll back only themselves. The methods below that write
  // run in a transaction of their own when called outside one. A write
  // method that throws inside `body` leaves the transaction usable on
  // SQLite but dooms it on PostgreSQL (its commit throws): a body that
  // catches such an error and goes on wraps the write in a nested call.
  virtual void write_transaction(const std::function<void()>& body) = 0;

  // A counter that each committed write of documents advances (0 for a new
  // store): whatever is derived from the store (a vector index) records the
  // generation it was built at, and is behind when that differs. Every
  // implementation keeps it as meta kGenerationMetaKey; Error(kFormat) when
  // that holds something other than an integer.
  int64_t generation() const;
  // Advances the generation by one and returns it; call inside the
  // write_transaction of the write it counts, so that both commit together.
  virtual int64_t advance_generation() = 0;

  virtual std::optional<DocumentRecord> find_document(const std::string& external_id) const = 0;
  // Error(kNotFound) "no document with id N" when absent.
  virtual DocumentRecord document(int64_t id) const = 0;
  // Inserts the document; returns its id. An external id already stored is
  // Error(kInvalidArgument). Ids are never reused after a removal, so
  // nothing keyed by an id (a RAM cache entry, a vector not yet removed)
  // can ever name another document's or chunk's data.
  virtual int64_t add_document(const Document& doc, const std::string& content_hash) = 0;
  // Removes the document with its chunks and their lexical entries; returns
  // the ids of the chunks removed (none when absent). Their cached memories
  // are the caller's to remove from the BlobStore.
  virtual std::vector<int64_t> remove_document(int64_t id) = 0;
  // Inserts the chunk with its embedding and lexical entry; returns its id.
  // An unknown document is Error(kInvalidArgument).
  virtual int64_t add_chunk(int64_t document_id, const NewChunk& chunk) = 0;

  // A stored chunk with this content hash, if any.
  virtual std::optional<StoredEncoding> find_encoding(const std::string& content_hash) const = 0;
  // Error(kNotFound) "no chunk with id N" when absent.
  virtual ChunkRecord chunk(int64_t id) const = 0;
  // The chunks of a document by position; empty for an unknown document.
  virtual std::vector<ChunkRecord> document_chunks(int64_t document_id) const = 0;
  // The document id of each chunk of `chunk_ids`, in the same order (hybrid
  // fusion reads which chunks share a document); an unknown chunk id is
  // Error(kNotFound) "no chunk N".
  virtual std::vector<int64_t> chunk_documents(const std::vector<int64_t>& chunk_ids) const = 0;
  // The embedding of each chunk of `chunk_ids`, in the same order (the
  // passage prior weighs the retrieved chunks by them); an unknown chunk id
  // is Error(kNotFound) "no chunk N".
  virtual std::vector<std::vector<float>> chunk_embeddings(
      const std::vector<int64_t>& chunk_ids) const = 0;
  // Calls `fn` for every chunk's embedding, in ascending chunk id order
  // (what a vector index is built from).
  virtual void for_each_embedding(
      const std::function<void(int64_t chunk_id, std::span<const float> embedding)>& fn) const = 0;

  // Lexical search over chunk text: up to k (chunk id, score) pairs, best
  // first, equal scores by ascending id, higher score better. The query's
  // words (runs of letters and digits) are matched with OR; any query
  // syntax of the engine is treated as plain words. k < 0 is
  // Error(kInvalidArgument) "search_lexical: k must be >= 0, got K".
  virtual std::vector<std::pair<int64_t, double>> search_lexical(const std::string& query,
                                                                 int64_t k) const = 0;

  virtual MetadataStats stats() const = 0;
};

}  // namespace kvrag
