#include "pipeline/index_meta.h"

#include <filesystem>
#include <limits>
#include <stdexcept>

#include "core/error.h"
#include "core/hash.h"

namespace kvrag {
namespace {

constexpr const char* kFaissGeneration = "faiss_generation";

// Meta keys of the prompt templates, next to the member each one holds.
struct PromptKey {
  const char* key;
  std::string PromptTemplates::*member;
};
constexpr PromptKey kPromptKeys[] = {
    {"prompt_question", &PromptTemplates::question},
    {"prompt_chunk", &PromptTemplates::chunk},
    {"prompt_fid", &PromptTemplates::fid},
    {"prompt_concat", &PromptTemplates::concat},
    {"prompt_concat_passage", &PromptTemplates::concat_passage},
};

std::string require_meta(const MetadataStore& store, const std::string& key) {
  const auto value = store.meta(key);
  KVRAG_CHECK(value.has_value(), kFormat, store.location(), ": meta has no '", key,
              "' (the index was not created completely; delete the folder and index again)");
  return *value;
}

int64_t parse_meta_int(const MetadataStore& store, const std::string& key,
                       const std::string& text) {
  size_t used = 0;
  int64_t value = 0;
  try {
    value = std::stoll(text, &used);
  } catch (const std::logic_error&) {
    used = 0;
  }
  KVRAG_CHECK(used == text.size() && used > 0, kFormat, store.location(), ": meta '", key, "' = '",
              text, "' is not an integer");
  return value;
}

int64_t require_meta_int(const MetadataStore& store, const std::string& key) {
  return parse_meta_int(store, key, require_meta(store, key));
}

int require_meta_int32(const MetadataStore& store, const std::string& key) {
  const int64_t value = require_meta_int(store, key);
  KVRAG_CHECK(value >= 0 && value <= std::numeric_limits<int>::max(), kFormat, store.location(),
              ": meta '", key, "' = ", value, " is out of range");
  return static_cast<int>(value);
}

// A parse error of a recorded enum is a damaged store, not a bad argument.
template <typename Parse>
auto parse_meta_enum(const MetadataStore& store, const std::string& key, Parse parse) {
  const std::string text = require_meta(store, key);
  try {
    return parse(text);
  } catch (const Error& e) {
    KVRAG_THROW(kFormat, store.location(), ": meta '", key, "': ", e.what());
  }
}

}  // namespace

void write_index_meta(MetadataStore& store, const IndexMeta& meta) {
  store.set_meta("model_dir", meta.model_dir);
  store.set_meta("model_fingerprint", meta.model_fingerprint);
  store.set_meta("tokenizer_fingerprint", meta.tokenizer_fingerprint);
  store.set_meta("embedding_dim", std::to_string(meta.embedding_dim));
  store.set_meta("chunk_tokens", std::to_string(meta.settings.chunking.max_tokens));
  store.set_meta("chunk_overlap", std::to_string(meta.settings.chunking.overlap));
  store.set_meta("cache", cache_granularity_name(meta.settings.cache));
  store.set_meta("kv_dtype", kv_dtype_name(meta.settings.kv_dtype));
  store.set_meta("faiss_factory", meta.settings.faiss_factory);
  for (const PromptKey& p : kPromptKeys) store.set_meta(p.key, meta.settings.prompts.*p.member);
  store.set_meta("embedder_dir", meta.settings.embedder_dir);
  store.set_meta("embedder_fingerprint", meta.embedder_fingerprint);
}

bool holds_index_meta(const MetadataStore& store) {
  return store.meta("model_fingerprint").has_value();
}

IndexMeta read_index_meta(const MetadataStore& store) {
  IndexMeta meta;
  meta.model_dir = require_meta(store, "model_dir");
  meta.model_fingerprint = require_meta(store, "model_fingerprint");
  const auto tokenizer = store.meta("tokenizer_fingerprint");
  KVRAG_CHECK(tokenizer.has_value(), kFormat, store.location(),
              ": this index was built by an older kvrag (no tokenizer fingerprint, K/V blobs "
              "without checksums); index the documents again into a new folder");
  meta.tokenizer_fingerprint = *tokenizer;
  meta.embedding_dim = require_meta_int(store, "embedding_dim");
  meta.settings.chunking.max_tokens = require_meta_int32(store, "chunk_tokens");
  meta.settings.chunking.overlap = require_meta_int32(store, "chunk_overlap");
  meta.settings.cache = parse_meta_enum(store, "cache", parse_cache_granularity);
  meta.settings.kv_dtype = parse_meta_enum(store, "kv_dtype", parse_kv_dtype);
  meta.settings.faiss_factory = require_meta(store, "faiss_factory");
  for (const PromptKey& p : kPromptKeys)
    meta.settings.prompts.*p.member = require_meta(store, p.key);
  meta.settings.embedder_dir = store.meta("embedder_dir").value_or("");
  meta.embedder_fingerprint = store.meta("embedder_fingerprint").value_or(kNoEmbedder);
  KVRAG_CHECK((meta.embedder_fingerprint == kNoEmbedder) == meta.settings.embedder_dir.empty(),
              kFormat, store.location(), ": meta 'embedder_dir' = '", meta.settings.embedder_dir,
              "' does not go with 'embedder_fingerprint' = '", meta.embedder_fingerprint, "'");
  return meta;
}

std::string tokenizer_fingerprint(const std::string& model_dir) {
  const std::filesystem::path path = std::filesystem::path(model_dir) / "spiece.model";
  std::error_code ec;
  return std::filesystem::exists(path, ec) ? hex64(hash_file(path.string())) : "none";
}

int64_t read_faiss_generation(const MetadataStore& store) {
  const auto value = store.meta(kFaissGeneration);
  return value ? parse_meta_int(store, kFaissGeneration, *value) : 0;
}

void write_faiss_generation(MetadataStore& store, int64_t generation) {
  store.set_meta(kFaissGeneration, std::to_string(generation));
}

}  // namespace kvrag
