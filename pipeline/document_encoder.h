// The indexing work on one batch of documents before anything is written:
// chunking, chunk prompts, content hashes, encoding, the cached memory blob
// and the embedding of each chunk. RagPipeline::add_documents writes the
// result in one store transaction.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "data/blob_store.h"
#include "data/document.h"
#include "data/metadata_store.h"
#include "encoder/t5_encoder.h"
#include "encoder/t5_encoder_model.h"
#include "pipeline/index_settings.h"

namespace kvrag {

// Hash (32 hex digits) of everything a document's stored rows depend on:
// model fingerprint, chunking and cache settings, the chunk template, title,
// text and metadata. Equal hash: re-indexing the document would change nothing.
std::string document_content_hash(const T5EncoderModel& model, const IndexSettings& settings,
                                  const Document& doc);

// The id of a document sent without one: "doc-" + a hash of its title and
// its normalised text (normalize_text), so that sending the same document
// twice, however its whitespace differs, names the same document.
std::string default_document_id(const std::string& title, const std::string& text);

// Hash (32 hex digits) of what a chunk's memory blob and embedding depend on:
// model fingerprint, cache granularity, dtype and the prompt ids.
std::string chunk_content_hash(const T5EncoderModel& model, const IndexSettings& settings,
                               const std::vector<int32_t>& prompt_ids);

// The encoder input of one chunk: PromptTemplates::chunk filled with the
// document title (cut to kMaxTitleTokens by prompt_title) and the chunk
// text, tokenized, eos appended.
std::vector<int32_t> chunk_prompt_ids(const T5EncoderModel& model, const IndexSettings& settings,
                                      const std::string& title, const std::string& chunk_text);

// The chunks of `doc` with position, text, token ids (of the chunk text,
// no eos) and content hash filled; the embedding is left empty for
// encode_chunks. `prompts` receives each chunk's prompt ids, parallel to
// the result.
std::vector<NewChunk> chunk_document(const T5EncoderModel& model, const IndexSettings& settings,
                                     const Document& doc,
                                     std::vector<std::vector<int32_t>>& prompts);

// The memory blob (data/kv_blob.h) of one chunk from its encoder output
// `hidden` (prompt tokens, d_model): for kKv the 2 × decoder layers matrices
// K_0, V_0, K_1, V_1, … of project_cross_kv, for kHidden `hidden` itself.
std::vector<uint8_t> encode_memory_blob(const T5EncoderModel& model, const IndexSettings& settings,
                                        ConstView hidden);

// A chunk waiting for its embedding and memory blob, with its prompt.
struct PendingChunk {
  NewChunk* chunk;
  MemoryBlob* memory;
  const std::vector<int32_t>* prompt_ids;
};

// Fills the embedding and the memory blob of every pending chunk: copied
// from a stored chunk with the same content hash (MetadataStore::find_encoding,
// its blob from `blobs`) or from an earlier pending one, else encoded,
// `encode_batch` prompts per encoder call. A stored chunk whose blob is gone
// is encoded again. Returns how many were copied instead of encoded.
int64_t encode_chunks(const T5Encoder& encoder, const MetadataStore& metadata,
                      const BlobStore& blobs, const IndexSettings& settings,
                      const std::vector<PendingChunk>& pending, int64_t encode_batch = 32);

}  // namespace kvrag
