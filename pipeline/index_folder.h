// One index folder on disk and in memory: store.sqlite (the source of
// truth), vectors.faiss (derived: rebuilt from the stored embeddings when
// missing or behind the store), the store generations that tell the two
// apart, the model the index was built with, its separate embedder when it
// has one, and the RAM cache of chunk memories. Writing keeps FAISS, its
// file and the RAM cache in step with every committed store transaction.
//
// Threads: IndexFolder takes no lock. RagPipeline serialises writers and
// keeps readers out while a batch commits; the store and KvRamCache are
// safe to read from many threads, FAISS while no one writes it.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "data/document.h"
#include "data/store.h"
#include "decoder/t5_model.h"
#include "encoder/t5_encoder.h"
#include "pipeline/document_encoder.h"
#include "pipeline/index_settings.h"
#include "pipeline/kv_ram_cache.h"
#include "retriever/faiss_index.h"
#include "retriever/sentence_embedder.h"

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

struct IndexStats {
  StoreStats store;
  int64_t faiss_vectors = 0;
  std::string faiss_factory;
  int64_t faiss_file_bytes = 0;  // size of vectors.faiss on disk
  std::string model_dir;
  std::string model_fingerprint;
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
  std::vector<ChunkInputs> inputs;  // parallel to chunks
  int64_t id = 0;                   // store row id once known
  bool replaced = false;
};

class IndexFolder {
 public:
  // See RagPipeline::create, open and exists: the same contracts.
  static std::unique_ptr<IndexFolder> create(const std::string& dir, const std::string& model_dir,
                                             const IndexSettings& settings,
                                             const OpenOptions& options);
  static std::unique_ptr<IndexFolder> open(const std::string& dir, const OpenOptions& options);
  static bool exists(const std::string& dir);
  ~IndexFolder();

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

  IndexStats stats() const;

  const std::string& dir() const { return dir_; }
  const std::shared_ptr<const T5Model>& model() const { return model_; }
  const T5Encoder& encoder() const { return encoder_; }
  // The separate embedder, or null when the reader's encoder embeds.
  const SentenceEmbedder* embedder() const { return embedder_.get(); }
  // The embedder's dimension, or the reader's d_model without one.
  int64_t embedding_dim() const;
  const Store& store() const { return *store_; }
  const FaissIndex& vectors() const { return *faiss_; }
  KvRamCache& ram_cache() const { return *kv_cache_; }
  const IndexSettings& settings() const { return settings_; }

 private:
  IndexFolder(std::string dir, std::shared_ptr<const T5Model> model,
              std::shared_ptr<const SentenceEmbedder> embedder, std::unique_ptr<Store> store,
              IndexSettings settings, const OpenOptions& options);

  std::string dir_;
  std::shared_ptr<const T5Model> model_;
  T5Encoder encoder_;
  std::shared_ptr<const SentenceEmbedder> embedder_;  // null: the reader's encoder embeds
  std::unique_ptr<Store> store_;
  std::unique_ptr<FaissIndex> faiss_;
  std::unique_ptr<KvRamCache> kv_cache_;
  IndexSettings settings_;
};

}  // namespace kvrag
