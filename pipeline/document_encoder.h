// The indexing work on one batch of documents before anything is written:
// chunking, chunk prompts, content hashes, encoding, the cached memory blob
// and the embedding of each chunk. RagPipeline::add_documents writes the
// result in one store transaction.
//
// `embedder`, where a function takes one, is the index's separate embedder
// (retriever/sentence_embedder.h), or null when the reader's encoder embeds
// (the embedding is then embed() of the chunk prompt's encoder output).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/bytes.h"
#include "core/tensor.h"
#include "data/blob_store.h"
#include "data/document.h"
#include "data/metadata_store.h"
#include "encoder/t5_encoder.h"
#include "encoder/t5_encoder_model.h"
#include "pipeline/index_settings.h"
#include "retriever/sentence_embedder.h"

namespace kvrag {

// Hash (32 hex digits) of everything a document's stored rows depend on:
// model fingerprint (and the embedder's, with one), chunking and cache
// settings, the chunk template, title, text and metadata. Equal hash:
// re-indexing the document would change nothing.
std::string document_content_hash(const T5EncoderModel& model, const SentenceEmbedder* embedder,
                                  const IndexSettings& settings, const Document& doc);

// The id of a document sent without one: "doc-" + a hash of its title and
// its normalised text (normalize_text), so that sending the same document
// twice, however its whitespace differs, names the same document.
std::string default_document_id(const std::string& title, const std::string& text);

// The encoder inputs of one chunk.
struct ChunkInputs {
  std::vector<int32_t> prompt_ids;  // the reader's: chunk_prompt_ids
  // The separate embedder's: SentenceEmbedder::input_ids of chunk_embedder_text;
  // empty when the reader's encoder embeds.
  std::vector<int32_t> embedder_ids;
};

// Hash (32 hex digits) of what a chunk's memory blob and embedding depend on:
// model fingerprint, cache granularity, dtype and the prompt ids, and with
// an embedder its fingerprint and the embedder ids.
std::string chunk_content_hash(const T5EncoderModel& model, const SentenceEmbedder* embedder,
                               const IndexSettings& settings, const ChunkInputs& inputs);

// The encoder input of one chunk: PromptTemplates::chunk filled with the
// document title (cut to kMaxTitleTokens by prompt_title) and the chunk
// text, tokenized, eos appended.
std::vector<int32_t> chunk_prompt_ids(const T5EncoderModel& model, const IndexSettings& settings,
                                      const std::string& title, const std::string& chunk_text);

// The text a separate embedder embeds for a chunk: "title text" (the title
// as prompt_title cuts it, and a space), or the text alone under an empty
// title; no prompt prefix, as sentence-transformers retrievers embed passages.
std::string chunk_embedder_text(const std::string& prompt_title, const std::string& chunk_text);

// Whether chunking `text` gives at least one chunk: not when none of its
// characters is a token the model's tokenizer keeps (data/chunker.h
// has_tokens: cheap, it stops at the first word with a token).
bool gives_chunks(const T5EncoderModel& model, const std::string& text);

// The chunks of `doc` with position, text, token ids (of the chunk text,
// no eos) and content hash filled; the embedding is left empty for
// encode_chunks. `inputs` receives each chunk's encoder inputs, parallel to
// the result (the prompt's length is the memory's token count).
std::vector<NewChunk> chunk_document(const T5EncoderModel& model, const SentenceEmbedder* embedder,
                                     const IndexSettings& settings, const Document& doc,
                                     std::vector<ChunkInputs>& inputs);

// The memory blob (data/kv_blob.h) of one chunk from its encoder output
// `hidden` (prompt tokens, d_model): for kKv the 2 × decoder layers matrices
// K_0, V_0, K_1, V_1, … of project_cross_kv, for kHidden `hidden` itself.
Bytes encode_memory_blob(const T5EncoderModel& model, const IndexSettings& settings,
                         ConstView hidden);

// A chunk waiting for its embedding and memory blob, with its inputs.
struct PendingChunk {
  NewChunk* chunk;
  MemoryBlob* memory;
  const ChunkInputs* inputs;
};

// Fills the embedding and the memory blob of every pending chunk: copied
// from a stored chunk with the same content hash (MetadataStore::find_encoding,
// its blob from `blobs`) or from an earlier pending one, else encoded,
// `encode_batch` prompts per encoder call (and as many embedder inputs per
// embedder call). A stored chunk whose blob is gone is encoded again.
// Returns how many were copied instead of encoded.
int64_t encode_chunks(const T5Encoder& encoder, const SentenceEmbedder* embedder,
                      const MetadataStore& metadata, const BlobStore& blobs,
                      const IndexSettings& settings, const std::vector<PendingChunk>& pending,
                      int64_t encode_batch = 32);

}  // namespace kvrag
