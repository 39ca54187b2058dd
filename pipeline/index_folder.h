// One index folder on disk and in memory: its stores (data/index_stores.h;
// store.sqlite, the source of truth), vectors.faiss (derived: rebuilt from
// the stored embeddings when missing or behind the store), the store
// generations that tell the two apart, the model the index was built with,
// its separate embedder when it has one, and the RAM cache of chunk
// memories. Writing keeps the vector index, its file and the RAM cache in
// step with every committed store transaction. It holds the stores and the
// vector index by their interfaces only.
//
// Threads: IndexFolder takes no lock. RagPipeline serialises writers and
// keeps readers out while a batch commits; the stores and KvRamCache are
// safe to read from many threads, the vector index while no one writes it.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "data/blob_store.h"
#include "data/document.h"
#include "data/index_stores.h"
#include "data/metadata_store.h"
#include "decoder/t5_model.h"
#include "encoder/t5_encoder.h"
#include "pipeline/document_encoder.h"
#include "pipeline/index_settings.h"
#include "pipeline/kv_ram_cache.h"
#include "retriever/sentence_embedder.h"
#include "retriever/vector_index.h"

namespace kvrag {

struct IndexProgress {
  int64_t documents_done = 0;
  int64_t documents_total = 0;
  int64_t chunks_done = 0;
  double seconds = 0.0;
};
using ProgressCallback = std::function<void(const IndexProgress&)>;

struct IndexReport {
  int64_t documents_added = 0;      // new external ids
  int64_t documents_replaced = 0;   // same external id, new content
  int64_t documents_unchanged = 0;  // same external id, same content and settings: untouched
  int64_t chunks_added = 0;
  int64_t chunks_reused = 0;       // cached memory copied from an equal chunk, not encoded
  int64_t memory_bytes_added = 0;  // bytes of cached K/V (or hidden) written
  std::vector<std::pair<std::string, int64_t>> ids;  // (external id, document id) in input order
  double seconds = 0.0;
};

// What the stores hold, for `kvrag info`, /v1/stats and the benchmark.
struct StoreStats {
  int64_t documents = 0;
  int64_t chunks = 0;
  int64_t memory_bytes = 0;     // Σ bytes of the cached memory blobs
  int64_t text_bytes = 0;       // Σ bytes of document text
  int64_t embedding_bytes = 0;  // Σ bytes of embeddings
  int64_t memory_tokens = 0;    // Σ tokens of cached memory
  int64_t file_bytes = 0;       // store.sqlite + its WAL on disk
};

struct IndexStats {
  StoreStats store;
  bool shared = false;  // IndexFolder::shared: stores at a URI, FAISS without a file
  int64_t faiss_vectors = 0;
  std::string faiss_factory;
  int64_t faiss_file_bytes = 0;  // size of vectors.faiss on disk
  std::string model_dir;
  std::string model_fingerprint;
  WeightDtype model_weights = WeightDtype::kF32;  // the dtype its matrices are held in (--weights)
  // The separate embedder (empty dir and kNoEmbedder: the reader's encoder
  // embeds) and the embedding dimension.
  std::string embedder_dir;
  std::string embedder_fingerprint;
  int64_t embedding_dim = 0;
  IndexSettings settings;
  int64_t memory_bytes_per_token = 0;  // for the index's dtype and granularity
  int64_t kv_cache_bytes_used = 0;
  int64_t kv_cache_hits = 0;
  int64_t kv_cache_misses = 0;
  // Chunk memories missing from the blob store (evicted or lost) and
  // encoded again from their text since the index was opened.
  int64_t memories_reencoded = 0;
  // Batched decoding (RagPipeline::batch_decoding): decoder passes run and
  // Σ sequences per pass; both 0 when it is off.
  int64_t decode_steps = 0;
  int64_t decode_sequences = 0;
};

// One document of a batch on its way into the store.
struct BatchDocument {
  const Document* doc = nullptr;
  std::string content_hash;
  bool unchanged = false;  // stored with an equal content hash: left alone
  std::vector<NewChunk> chunks;
  std::vector<MemoryBlob> memories;  // parallel to chunks
  std::vector<ChunkInputs> inputs;   // parallel to chunks
  int64_t id = 0;                    // store row id once known
  bool replaced = false;
};

// What IndexFolder::copy moved.
struct CopyReport {
  int64_t documents = 0;
  int64_t chunks = 0;
  int64_t memory_bytes = 0;  // Σ bytes of the chunk memories copied
  double seconds = 0.0;
};

struct BatchWrite;  // what one write transaction changed (index_folder.cpp)

class IndexFolder {
 public:
  // See RagPipeline::create, open and exists: the same contracts.
  static std::unique_ptr<IndexFolder> create(const std::string& dir, const std::string& model_dir,
                                             const IndexSettings& settings,
                                             const OpenOptions& options);
  static std::unique_ptr<IndexFolder> open(const std::string& dir, const OpenOptions& options);
  static bool exists(const std::string& dir);
  // Copies the index at `from` (a folder or a URI) to `to`, which must hold
  // no index yet: its meta (model, settings), every document with its
  // chunks, embeddings and chunk memories as stored, nothing encoded again,
  // `batch` documents per write transaction. FAISS is built from the copied
  // embeddings when `to` is first opened. Writers of `from` wait while it
  // runs (it reads inside a write transaction of `from`, which also makes
  // what it reads one committed state); writers of a folder `to` are kept out
  // by its write lock. A blob that fails its checks stops the copy, naming
  // its chunk (kFormat); a crash part-way leaves `to` holding whole documents
  // only, and copying again needs an empty `to`. Error(kNotFound) when
  // `from` holds no index; Error(kInvalidArgument) when `to` holds one.
  static CopyReport copy(const std::string& from, const std::string& to, int64_t batch,
                         const std::function<void(const CopyReport&)>& progress = {});
  ~IndexFolder();

  // Error(kInvalidArgument) naming a document whose text gives no chunk
  // (none of its characters is a token the model's tokenizer keeps):
  // written, it would replace its id's stored chunks with none.
  void check_chunkable(const Document& doc) const;
  // Chunks, hashes and encodes (or reuses) `docs`, writing nothing, so that
  // readers need not wait for the encoding. A document whose stored content
  // hash is equal is marked unchanged and not chunked. Adds the chunks whose
  // memory was copied rather than encoded to `chunks_reused`.
  std::vector<BatchDocument> prepare(std::span<const Document* const> docs,
                                     int64_t& chunks_reused) const;
  // Writes `items` (replacing documents of equal external id) in one store
  // transaction, then brings FAISS, vectors.faiss and the RAM cache in step;
  // counts what changed into `report`. When following the commit fails, the
  // in-memory FAISS is re-synced with the store before the error goes on.
  // The caller holds the folder's WriteLock and keeps readers out.
  void commit(std::vector<BatchDocument>& items, IndexReport& report);
  // Removes the document and its chunks, as commit does; false if absent.
  bool remove(const std::string& external_id);

  // True when the stores are shared with other processes (a postgresql://
  // URI): there is no folder to lock, and each process follows the others'
  // commits (behind, catch_up) instead.
  bool shared() const;
  // Whether a write this folder has not followed was committed to the
  // stores (by another process): one read of the store generation.
  bool behind() const;
  // Brings FAISS and the RAM cache in step with the stores as they are now.
  // The caller keeps readers and writers out.
  void catch_up();
  // Counts a chunk memory that was missing from the blob store and was
  // encoded again from the chunk's text (MemoryBuilder).
  void count_reencoded() const { ++memories_reencoded_; }

  IndexStats stats() const;

  // The folder, or the URI without its password.
  const std::string& dir() const { return dir_; }
  const std::shared_ptr<const T5Model>& model() const { return model_; }
  const T5Encoder& encoder() const { return encoder_; }
  const MetadataStore& metadata() const { return *metadata_; }
  const BlobStore& blobs() const { return *blobs_; }
  const VectorIndex& vectors() const { return *vectors_; }
  // The separate embedder, or null when the reader's encoder embeds.
  const SentenceEmbedder* embedder() const { return embedder_.get(); }
  // The embedder's dimension, or the reader's d_model without one.
  int64_t embedding_dim() const;
  KvRamCache& ram_cache() const { return *kv_cache_; }
  const IndexSettings& settings() const { return settings_; }

 private:
  IndexFolder(std::string dir, std::shared_ptr<const T5Model> model,
              std::shared_ptr<const SentenceEmbedder> embedder, IndexStores stores,
              IndexSettings settings, const OpenOptions& options);

  // Follows a write this folder committed: FAISS, its file and the RAM cache.
  void follow(const BatchWrite& written);

  std::string location_;    // the folder or URI as given
  std::string dir_;         // as messages name it
  std::string faiss_path_;  // vectors.faiss; empty for a URI
  std::shared_ptr<const T5Model> model_;
  T5Encoder encoder_;
  std::shared_ptr<const SentenceEmbedder> embedder_;  // null: the reader's encoder embeds
  std::unique_ptr<MetadataStore> metadata_;
  std::unique_ptr<BlobStore> blobs_;
  std::unique_ptr<VectorIndex> vectors_;
  std::unique_ptr<KvRamCache> kv_cache_;
  IndexSettings settings_;
  // The store generation FAISS and the RAM cache reflect; read without a
  // lock by behind().
  std::atomic<int64_t> generation_ = 0;
  mutable std::atomic<int64_t> memories_reencoded_ = 0;
};

}  // namespace kvrag
