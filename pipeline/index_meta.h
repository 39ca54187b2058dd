// What an index folder records about itself in the store's meta table: the
// model it was built with and the IndexSettings fixed at creation, so that
// `open` needs nothing but the folder.
#pragma once

#include <cstdint>
#include <string>

#include "data/metadata_store.h"
#include "pipeline/index_settings.h"

namespace kvrag {

struct IndexMeta {
  std::string model_dir;          // absolute path of the model folder at creation
  std::string model_fingerprint;  // T5Model::fingerprint: config.json and weights
  // The model's spiece.model (tokenizer_fingerprint), "none" without one:
  // the same weights with another tokenizer read other token ids.
  std::string tokenizer_fingerprint;
  // d_model when the reader's encoder embeds (mean-pooled encoder outputs),
  // else the separate embedder's dimension (SentenceEmbedder::dim).
  int64_t embedding_dim = 0;
  // SentenceEmbedder::fingerprint of settings.embedder_dir, kNoEmbedder
  // when the reader's encoder embeds (also for an index written before
  // kvrag had separate embedders, which lacks the key).
  std::string embedder_fingerprint;
  IndexSettings settings;
};

// Writes every key of `meta` (call inside the store's write transaction that
// creates the index, so an index is never half-described).
void write_index_meta(MetadataStore& store, const IndexMeta& meta);

// Reads them back. Error(kFormat) naming the store and the key when one is
// missing or malformed (an index whose creation did not finish); an index
// without "tokenizer_fingerprint" was built by a kvrag before K/V blob
// checksums and is Error(kFormat) "… index the documents again into a new
// folder" (its blobs, format version 1, would not be read either).
IndexMeta read_index_meta(const MetadataStore& store);
// Whether `store` holds an index's meta yet (a new PostgreSQL schema holds none).
bool holds_index_meta(const MetadataStore& store);

constexpr const char* kNoEmbedder = "none";

// Hex hash of `model_dir`/spiece.model, or "none" when the folder has none.
std::string tokenizer_fingerprint(const std::string& model_dir);

// The store generation (MetadataStore::generation) vectors.faiss was last
// saved at, in meta "faiss_generation"; 0 when absent. Unequal to the
// store's at open means the FAISS file may be stale even when its ids
// match.
int64_t read_faiss_generation(const MetadataStore& store);
void write_faiss_generation(MetadataStore& store, int64_t generation);

}  // namespace kvrag
