#include "pipeline/document_encoder.h"

#include <algorithm>
#include <string_view>
#include <unordered_map>

#include "core/error.h"
#include "core/hash.h"
#include "data/chunker.h"
#include "data/kv_blob.h"
#include "data/text_normalization.h"
#include "encoder/cross_kv.h"
#include "pipeline/prompts.h"
#include "retriever/embedder.h"

namespace kvrag {
namespace {

// chunk_text's tokenizer: the model's SentencePiece, word by word.
TokenizeFn word_tokenizer(const T5EncoderModel& model) {
  const Tokenizer& tokenizer = model.require_tokenizer();
  return [&tokenizer](const std::string& word) { return tokenizer.encode(word); };
}

// A 128-bit hash as two 64-bit chains with different seeds, over pieces
// each prefixed by its length so that ("ab", "c") and ("a", "bc") differ.
class ContentHasher {
 public:
  ContentHasher& add(std::string_view piece) {
    const uint64_t size = piece.size();
    add_bytes(&size, sizeof size);
    add_bytes(piece.data(), piece.size());
    return *this;
  }
  ContentHasher& add(int64_t value) {
    add_bytes(&value, sizeof value);
    return *this;
  }
  ContentHasher& add(const std::vector<int32_t>& ids) {
    const uint64_t size = ids.size();
    add_bytes(&size, sizeof size);
    add_bytes(ids.data(), ids.size() * sizeof(int32_t));
    return *this;
  }
  std::string hex() const { return hex64(low_) + hex64(high_); }

 private:
  void add_bytes(const void* data, size_t size) {
    low_ = hash_bytes(data, size, low_);
    high_ = hash_bytes(data, size, high_);
  }
  uint64_t low_ = 0;
  uint64_t high_ = 0x9e3779b97f4a7c15ull;
};

// Fills `p` from a stored chunk of equal content hash; false when there is
// none, its blob is gone (a remote blob store may have evicted it) or it
// fails read_kv_blob's checks: a damaged blob copied unchecked into new
// chunks spread its damage to them, found only when they were asked for.
bool reuse_stored(const MetadataStore& metadata, const BlobStore& blobs, const PendingChunk& p) {
  auto stored = metadata.find_encoding(p.chunk->content_hash);
  if (!stored) return false;
  auto blob = blobs.get(stored->chunk_id);
  if (!blob) return false;
  try {
    read_kv_blob(*blob, str_cat("memory of chunk ", stored->chunk_id));  // checks a copy
  } catch (const Error& e) {
    if (e.kind() != ErrorKind::kFormat) throw;
    return false;
  }
  p.chunk->embedding = std::move(stored->embedding);
  p.memory->bytes = std::move(*blob);
  return true;
}

// The model, granularity and dtype: what every cached memory depends on;
// and the embedder, with one (without, the hash is what it was before kvrag
// had separate embedders, so that existing indexes keep reusing chunks).
ContentHasher memory_hasher(const T5EncoderModel& model, const SentenceEmbedder* embedder,
                            const IndexSettings& settings) {
  ContentHasher h;
  h.add(model.fingerprint)
      .add(cache_granularity_name(settings.cache))
      .add(kv_dtype_name(settings.kv_dtype));
  if (embedder != nullptr) h.add("embedder").add(embedder->fingerprint());
  return h;
}

}  // namespace

std::string document_content_hash(const T5EncoderModel& model, const SentenceEmbedder* embedder,
                                  const IndexSettings& settings, const Document& doc) {
  ContentHasher h = memory_hasher(model, embedder, settings);
  h.add(settings.chunking.max_tokens)
      .add(settings.chunking.overlap)
      .add(settings.prompts.chunk)
      .add(doc.title)
      .add(doc.text)
      .add(doc.metadata_json);
  return h.hex();
}

std::string default_document_id(const std::string& title, const std::string& text) {
  return "doc-" + hex64(hash_string(normalize_text(text), hash_string(title)));
}

std::string chunk_content_hash(const T5EncoderModel& model, const SentenceEmbedder* embedder,
                               const IndexSettings& settings, const ChunkInputs& inputs) {
  ContentHasher h = memory_hasher(model, embedder, settings);
  h.add(inputs.prompt_ids);
  if (embedder != nullptr) h.add(inputs.embedder_ids);
  return h.hex();
}

std::vector<int32_t> chunk_prompt_ids(const T5EncoderModel& model, const IndexSettings& settings,
                                      const std::string& title, const std::string& chunk_text) {
  PromptFields fields;
  fields.title = prompt_title(model, title);  // cut to kMaxTitleTokens
  fields.text = chunk_text;
  return prompt_ids(model, fill_prompt(settings.prompts.chunk, fields));
}

std::string chunk_embedder_text(const std::string& prompt_title, const std::string& chunk_text) {
  return prompt_title.empty() ? chunk_text : prompt_title + " " + chunk_text;
}

bool gives_chunks(const T5EncoderModel& model, const std::string& text) {
  return has_tokens(text, word_tokenizer(model));
}

std::vector<NewChunk> chunk_document(const T5EncoderModel& model, const SentenceEmbedder* embedder,
                                     const IndexSettings& settings, const Document& doc,
                                     std::vector<ChunkInputs>& inputs) {
  const TokenizeFn tokenize = word_tokenizer(model);
  const std::string title = embedder != nullptr ? prompt_title(model, doc.title) : "";
  std::vector<NewChunk> chunks;
  inputs.clear();
  for (Chunk& c : chunk_text(doc.text, tokenize, settings.chunking)) {
    ChunkInputs& in = inputs.emplace_back();
    in.prompt_ids = chunk_prompt_ids(model, settings, doc.title, c.text);
    if (embedder != nullptr) {
      in.embedder_ids = embedder->input_ids(chunk_embedder_text(title, c.text));
    }
    NewChunk chunk;
    chunk.position = c.position;
    chunk.text = std::move(c.text);
    chunk.token_ids = std::move(c.token_ids);
    chunk.content_hash = chunk_content_hash(model, embedder, settings, in);
    chunks.push_back(std::move(chunk));
  }
  return chunks;
}

Bytes encode_memory_blob(const T5EncoderModel& model, const IndexSettings& settings,
                         ConstView hidden) {
  if (settings.cache == CacheGranularity::kHidden) {
    return encode_kv_blob(settings.kv_dtype, std::span<const ConstView>(&hidden, 1));
  }
  const CrossKV kv = project_cross_kv(model, hidden);
  return encode_kv_blob(settings.kv_dtype, blob_order(kv));
}

int64_t encode_chunks(const T5Encoder& encoder, const SentenceEmbedder* embedder,
                      const MetadataStore& metadata, const BlobStore& blobs,
                      const IndexSettings& settings, const std::vector<PendingChunk>& pending,
                      int64_t encode_batch) {
  KVRAG_CHECK(encode_batch > 0, kInvalidArgument, "encode batch must be > 0, got ", encode_batch);
  // Equal content in one batch is encoded once: later copies wait for the first.
  std::unordered_map<std::string, const PendingChunk*> first_by_hash;
  std::vector<std::pair<const PendingChunk*, const PendingChunk*>> copies;
  std::vector<const PendingChunk*> to_encode;
  int64_t reused = 0;
  for (const PendingChunk& p : pending) {
    // Equal content hash: equal prompt, so equal length.
    p.memory->tokens = static_cast<int64_t>(p.inputs->prompt_ids.size());
    if (const auto it = first_by_hash.find(p.chunk->content_hash); it != first_by_hash.end()) {
      copies.emplace_back(&p, it->second);
      ++reused;
      continue;
    }
    first_by_hash.emplace(p.chunk->content_hash, &p);
    if (reuse_stored(metadata, blobs, p)) {
      ++reused;
      continue;
    }
    to_encode.push_back(&p);
  }

  const T5EncoderModel& model = encoder.model();
  for (size_t begin = 0; begin < to_encode.size(); begin += static_cast<size_t>(encode_batch)) {
    const size_t end = std::min(to_encode.size(), begin + static_cast<size_t>(encode_batch));
    std::vector<std::vector<int32_t>> batch;
    std::vector<std::vector<int32_t>> embedder_batch;
    for (size_t i = begin; i < end; ++i) {
      batch.push_back(to_encode[i]->inputs->prompt_ids);
      if (embedder != nullptr) embedder_batch.push_back(to_encode[i]->inputs->embedder_ids);
    }
    const std::vector<Tensor> hidden = encoder.encode_batch(batch);
    std::vector<std::vector<float>> embeddings;
    if (embedder != nullptr) embeddings = embedder->embed_batch(embedder_batch);
    for (size_t i = begin; i < end; ++i) {
      const ConstView h = hidden[i - begin].view();
      to_encode[i]->chunk->embedding =
          embedder != nullptr ? std::move(embeddings[i - begin]) : embed(h);
      to_encode[i]->memory->bytes = encode_memory_blob(model, settings, h);
    }
  }
  for (auto& [copy, original] : copies) {
    copy->chunk->embedding = original->chunk->embedding;
    copy->memory->bytes = original->memory->bytes;
  }
  return reused;
}

}  // namespace kvrag
