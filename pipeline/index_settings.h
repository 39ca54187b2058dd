// What an index folder is created with (recorded in its store's meta table)
// and how it is opened.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "core/weight_matrix.h"
#include "data/chunker.h"
#include "data/kv_blob.h"

namespace kvrag {

struct T5Model;

// What the store caches per chunk: per-layer cross-attention K/V (no
// projection work per question) or the encoder output only (2 × decoder
// layers times smaller; K/V projected at question time). A chunk's memory
// blob (data/kv_blob.h) holds, for kKv, 2 × decoder layers matrices of
// (prompt tokens, inner_dim) in the order K_0, V_0, K_1, V_1, …; for kHidden
// one matrix (prompt tokens, d_model). Prompt tokens are the chunk prompt
// (PromptTemplates::chunk) tokenized, eos included.
enum class CacheGranularity { kKv, kHidden };
const char* cache_granularity_name(CacheGranularity g);
CacheGranularity parse_cache_granularity(const std::string& name);  // "kv" | "hidden"

// Prompt templates; {question}, {title}, {text} are replaced. Defaults are
// the formats the demo model was trained on (models/kvrag-demo/README.md).
struct PromptTemplates {
  std::string question = "question: {question}";         // cached mode, retrieval query
  std::string chunk = "title: {title} context: {text}";  // a chunk encoded alone
  std::string fid = "question: {question} title: {title} context: {text}";
  std::string concat = "question: {question} context: {passages}";  // {passages}: joined below
  std::string concat_passage = "{title}: {text}";                   // joined by single spaces
};

// Fixed when an index is created and recorded in the store's meta table.
struct IndexSettings {
  ChunkOptions chunking;                           // --chunk-tokens, --overlap
  CacheGranularity cache = CacheGranularity::kKv;  // --cache
  KvDtype kv_dtype = KvDtype::kF16;                // --kv-dtype
  std::string faiss_factory = "Flat";              // --faiss
  PromptTemplates prompts;
  // --embedder: a separate retrieval model (retriever/sentence_embedder.h)
  // that embeds chunks and questions; empty: the reader's encoder does
  // (retriever/embedder.h). Read back from an index, the absolute path it
  // was created with.
  std::string embedder_dir;
};

// The longest chunk: each is one encoder input, whose attention scores and
// position bias grow with its square; as long as the longest concat prompt
// (kMaxConcatTokens). A chunk of 200,000 tokens failed with bad_alloc.
constexpr int kMaxChunkTokens = 8192;

// Error(kInvalidArgument) for chunk tokens outside [1, kMaxChunkTokens], an
// overlap outside [0, chunk tokens), an empty FAISS factory or a chunk
// template without {text}.
void check_settings(const IndexSettings& settings);

struct OpenOptions {
  // The model folder; empty: the one recorded in the index. Either way its
  // fingerprint must equal the index's (Error(kInvalidArgument) naming both).
  std::string model_dir;
  // The embedder folder; empty: the one recorded in the index, if any. Its
  // fingerprint must equal the index's, and an index built without one
  // refuses one (Error(kInvalidArgument) naming both).
  std::string embedder_dir;
  int64_t kv_cache_bytes = 256ll << 20;  // RAM cache of chunk K/V, 0 disables it
  // The dtype the model's weight matrices are loaded in (`--weights`): int8
  // quarters their bytes and so nearly the time of a decoder step. Either
  // opens any index of the model: the fingerprint is the checkpoint's.
  WeightDtype weights = WeightDtype::kF32;
  // A model already loaded (RagPipeline::shared_model of another index)
  // that open() uses instead of loading one: two indexes of one model then
  // hold its weights once. Checked against the index like a folder's (with
  // the tokenizer in its folder); model_dir and weights are then unused.
  std::shared_ptr<const T5Model> model;
};

}  // namespace kvrag
