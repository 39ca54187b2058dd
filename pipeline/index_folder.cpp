#include "pipeline/index_folder.h"

#include <algorithm>
#include <filesystem>
#include <unordered_set>

#include "core/error.h"
#include "pipeline/document_encoder.h"
#include "pipeline/index_meta.h"

namespace kvrag {
namespace {
namespace fs = std::filesystem;

constexpr const char* kStoreFile = "store.sqlite";
constexpr const char* kFaissFile = "vectors.faiss";
// Chunk prompts per T5Encoder::encode_batch call: bounds the encoder's
// working memory whatever the document batch holds.
constexpr int64_t kEncodeBatch = 32;

std::string store_path(const std::string& dir) { return (fs::path(dir) / kStoreFile).string(); }
std::string faiss_path(const std::string& dir) { return (fs::path(dir) / kFaissFile).string(); }

void check_same_model(const std::string& dir, const IndexMeta& meta, const T5Model& model,
                      const std::string& model_dir) {
  KVRAG_CHECK(model.fingerprint == meta.model_fingerprint, kInvalidArgument, "the index ", dir,
              " was built with the model ", meta.model_dir, " (fingerprint ",
              meta.model_fingerprint, "), not with the model ", model.dir, " (fingerprint ",
              model.fingerprint, ")");
  const std::string tokenizer = tokenizer_fingerprint(model_dir);
  KVRAG_CHECK(tokenizer == meta.tokenizer_fingerprint, kInvalidArgument, "the index ", dir,
              " was built with the tokenizer ", meta.model_dir, "/spiece.model (fingerprint ",
              meta.tokenizer_fingerprint, "), not with ", model_dir, "/spiece.model (fingerprint ",
              tokenizer, "): the same weights with another tokenizer read other token ids");
}

// The index's separate embedder, loaded from `embedder_dir` (empty: the
// folder the index records) and checked against the index; null when the
// reader's encoder embeds.
std::shared_ptr<const SentenceEmbedder> open_embedder(const std::string& dir, const IndexMeta& meta,
                                                      const T5Model& model,
                                                      const std::string& embedder_dir) {
  if (meta.embedder_fingerprint == kNoEmbedder) {
    KVRAG_CHECK(embedder_dir.empty(), kInvalidArgument, "the index ", dir,
                " was built without a separate embedder (the reader's encoder embeds), not with "
                "the embedder ",
                embedder_dir);
    KVRAG_CHECK(meta.embedding_dim == model.config.d_model, kFormat, store_path(dir),
                ": embedding_dim ", meta.embedding_dim, " differs from the model's d_model ",
                model.config.d_model);
    return nullptr;
  }
  const std::string path = embedder_dir.empty() ? meta.settings.embedder_dir : embedder_dir;
  auto embedder = SentenceEmbedder::load(path);
  KVRAG_CHECK(embedder->fingerprint() == meta.embedder_fingerprint, kInvalidArgument, "the index ",
              dir, " was built with the embedder ", meta.settings.embedder_dir, " (fingerprint ",
              meta.embedder_fingerprint, "), not with the embedder ", path, " (fingerprint ",
              embedder->fingerprint(), ")");
  KVRAG_CHECK(meta.embedding_dim == embedder->dim(), kFormat, store_path(dir), ": embedding_dim ",
              meta.embedding_dim, " differs from the embedder's dimension ", embedder->dim());
  return embedder;
}

// Saves vectors.faiss and records that it matches store generation
// `generation` (see read_generation in index_meta.h).
void save_faiss(const FaissIndex& index, Store& store, const std::string& dir, int64_t generation) {
  index.save(faiss_path(dir));
  write_generation(store, kFaissGeneration, generation);
}

// vectors.faiss when it holds exactly the store's chunk ids and was saved at
// the store's generation; otherwise an index rebuilt from the stored
// embeddings (and saved). A file FAISS cannot read counts as stale.
std::unique_ptr<FaissIndex> load_or_rebuild_faiss(Store& store, const std::string& dir, int64_t dim,
                                                  const std::string& factory) {
  // Ids first: when the file is current, no embedding is held in memory.
  std::vector<int64_t> ids;
  store.for_each_embedding([&](int64_t id, std::span<const float> embedding) {
    KVRAG_CHECK(static_cast<int64_t>(embedding.size()) == dim, kFormat, store.path(), ": chunk ",
                id, " has an embedding of ", embedding.size(), " values, expected ", dim);
    ids.push_back(id);
  });
  const int64_t generation = read_generation(store, kStoreGeneration);
  const std::string path = faiss_path(dir);
  if (read_generation(store, kFaissGeneration) == generation && fs::exists(path)) {
    try {
      auto index = FaissIndex::load(path, dim, factory);
      if (index->ids() == ids) return index;
    } catch (const Error&) {
      // Unreadable or truncated: rebuilt below from the source of truth.
    }
  }
  std::vector<float> vectors;
  vectors.reserve(ids.size() * static_cast<size_t>(dim));
  store.for_each_embedding([&](int64_t, std::span<const float> embedding) {
    vectors.insert(vectors.end(), embedding.begin(), embedding.end());
  });
  auto index = std::make_unique<FaissIndex>(dim, factory);
  if (!ids.empty()) index->add(ids, vectors);
  save_faiss(*index, store, dir, generation);
  return index;
}

// What one write transaction changed, for FAISS and the RAM cache.
struct BatchWrite {
  std::vector<int64_t> removed;  // chunk ids of replaced documents
  std::vector<int64_t> added;    // new chunk ids
  std::vector<float> vectors;    // (added, dim) their embeddings
  int64_t memory_bytes = 0;
};

// Writes the batch (replacing documents of equal external id) and advances
// the store generation, all in one transaction.
BatchWrite write_batch(Store& store, std::vector<BatchDocument>& items, int64_t generation) {
  BatchWrite w;
  store.write_transaction([&] {
    for (BatchDocument& item : items) {
      if (item.unchanged) continue;
      if (const auto old = store.find_document(item.doc->external_id)) {
        const std::vector<int64_t> ids = store.remove_document(old->id);
        w.removed.insert(w.removed.end(), ids.begin(), ids.end());
        item.replaced = true;
      }
      item.id = store.add_document(*item.doc, item.content_hash);
      for (const NewChunk& chunk : item.chunks) {
        w.added.push_back(store.add_chunk(item.id, chunk));
        w.vectors.insert(w.vectors.end(), chunk.embedding.begin(), chunk.embedding.end());
        w.memory_bytes += static_cast<int64_t>(chunk.memory_blob.size());
      }
    }
    write_generation(store, kStoreGeneration, generation);
  });
  return w;
}

// Brings the derived state (RAM cache, FAISS and its file) in step with a
// committed write of store generation `generation`.
void follow_store(const BatchWrite& w, int64_t generation, Store& store, FaissIndex& faiss,
                  KvRamCache& cache, const std::string& dir) {
  for (const int64_t id : w.removed) cache.erase(id);
  if (!w.removed.empty()) faiss.remove(w.removed);
  if (!w.added.empty()) faiss.add(w.added, w.vectors);
  save_faiss(faiss, store, dir, generation);
}

// Makes `faiss` hold exactly the store's embeddings, in place (readers may
// be searching it): ids the store lacks are removed, missing ones added.
void resync_faiss(FaissIndex& faiss, const Store& store) {
  const std::vector<int64_t> held = faiss.ids();
  const std::unordered_set<int64_t> held_set(held.begin(), held.end());
  std::unordered_set<int64_t> stored;
  std::vector<int64_t> missing;
  std::vector<float> vectors;
  store.for_each_embedding([&](int64_t id, std::span<const float> embedding) {
    stored.insert(id);
    if (held_set.count(id) != 0) return;
    missing.push_back(id);
    vectors.insert(vectors.end(), embedding.begin(), embedding.end());
  });
  std::vector<int64_t> extra;
  for (const int64_t id : held) {
    if (stored.count(id) == 0) extra.push_back(id);
  }
  if (!extra.empty()) faiss.remove(extra);
  if (!missing.empty()) faiss.add(missing, vectors);
}

// follow_store for a write SQLite has committed. The commit cannot be undone,
// so when following fails part way (a FAISS error, vectors.faiss not
// writable) the in-memory FAISS is re-synced with the store before the error
// goes on: otherwise searches would silently miss committed chunks, or
// return removed ones, until a restart. vectors.faiss keeps its older
// generation and is rebuilt from the store at the next open.
void follow_committed(const BatchWrite& w, int64_t generation, Store& store, FaissIndex& faiss,
                      KvRamCache& cache, const std::string& dir) {
  try {
    follow_store(w, generation, store, faiss, cache, dir);
  } catch (...) {
    resync_faiss(faiss, store);
    throw;
  }
}

void count_batch(const std::vector<BatchDocument>& items, const BatchWrite& w,
                 IndexReport& report) {
  for (const BatchDocument& item : items) {
    report.ids.emplace_back(item.doc->external_id, item.id);
    if (item.unchanged) {
      ++report.documents_unchanged;
    } else if (item.replaced) {
      ++report.documents_replaced;
    } else {
      ++report.documents_added;
    }
  }
  report.chunks_added += static_cast<int64_t>(w.added.size());
  report.memory_bytes_added += w.memory_bytes;
}

}  // namespace

// ---------------------------------------------------------------- opening

std::unique_ptr<IndexFolder> IndexFolder::create(const std::string& dir,
                                                 const std::string& model_dir,
                                                 const IndexSettings& settings,
                                                 const OpenOptions& options) {
  check_settings(settings);
  KVRAG_CHECK(!exists(dir), kInvalidArgument, "the folder ", dir, " already holds an index (",
              kStoreFile, "); open it or choose another folder");
  auto model = load_t5_model(model_dir, options.weights);
  model->require_tokenizer();
  IndexSettings recorded = settings;
  std::shared_ptr<const SentenceEmbedder> embedder;
  if (!settings.embedder_dir.empty()) {
    embedder = SentenceEmbedder::load(settings.embedder_dir);
    recorded.embedder_dir = fs::absolute(settings.embedder_dir).lexically_normal().string();
  }
  const int64_t dim = embedder ? embedder->dim() : model->config.d_model;
  // Built once here only to reject a factory string before anything is written.
  FaissIndex(dim, settings.faiss_factory);

  std::error_code ec;
  fs::create_directories(dir, ec);
  KVRAG_CHECK(!ec, kIo, "cannot create the index folder ", dir, ": ", ec.message());
  auto store = std::make_unique<Store>(store_path(dir));
  IndexMeta meta;
  meta.model_dir = fs::absolute(model_dir).lexically_normal().string();
  meta.model_fingerprint = model->fingerprint;
  meta.tokenizer_fingerprint = tokenizer_fingerprint(model_dir);
  meta.embedding_dim = dim;
  meta.embedder_fingerprint = embedder ? embedder->fingerprint() : kNoEmbedder;
  meta.settings = recorded;
  store->write_transaction([&] { write_index_meta(*store, meta); });
  return std::unique_ptr<IndexFolder>(new IndexFolder(dir, std::move(model), std::move(embedder),
                                                      std::move(store), recorded, options));
}

std::unique_ptr<IndexFolder> IndexFolder::open(const std::string& dir, const OpenOptions& options) {
  const std::string path = store_path(dir);
  KVRAG_CHECK(fs::is_regular_file(path), kNotFound, "no index in ", dir, " (", path,
              " does not exist)");
  auto store = std::make_unique<Store>(path);
  const IndexMeta meta = read_index_meta(*store);
  const std::string model_dir = options.model_dir.empty() ? meta.model_dir : options.model_dir;
  auto model = load_t5_model(model_dir, options.weights);
  check_same_model(dir, meta, *model, model_dir);
  auto embedder = open_embedder(dir, meta, *model, options.embedder_dir);
  return std::unique_ptr<IndexFolder>(new IndexFolder(dir, std::move(model), std::move(embedder),
                                                      std::move(store), meta.settings, options));
}

bool IndexFolder::exists(const std::string& dir) { return fs::exists(store_path(dir)); }

IndexFolder::IndexFolder(std::string dir, std::shared_ptr<const T5Model> model,
                         std::shared_ptr<const SentenceEmbedder> embedder,
                         std::unique_ptr<Store> store, IndexSettings settings,
                         const OpenOptions& options)
    : dir_(std::move(dir)),
      model_(model),
      encoder_(model),
      embedder_(std::move(embedder)),
      store_(std::move(store)),
      kv_cache_(std::make_unique<KvRamCache>(options.kv_cache_bytes)),
      settings_(std::move(settings)) {
  faiss_ = load_or_rebuild_faiss(*store_, dir_, embedding_dim(), settings_.faiss_factory);
}

int64_t IndexFolder::embedding_dim() const {
  return embedder_ ? embedder_->dim() : model_->config.d_model;
}

IndexFolder::~IndexFolder() = default;

// ---------------------------------------------------------------- writing

std::vector<BatchDocument> IndexFolder::prepare(std::span<const Document* const> docs,
                                                int64_t& chunks_reused) const {
  std::vector<BatchDocument> items(docs.size());
  for (size_t i = 0; i < docs.size(); ++i) {
    BatchDocument& item = items[i];
    item.doc = docs[i];
    item.content_hash = document_content_hash(*model_, embedder_.get(), settings_, *docs[i]);
    const auto existing = store_->find_document(docs[i]->external_id);
    if (existing && existing->content_hash == item.content_hash) {
      item.unchanged = true;
      item.id = existing->id;
      continue;
    }
    item.chunks = chunk_document(*model_, embedder_.get(), settings_, *docs[i], item.inputs);
  }
  // Pointers into the items' chunk vectors: taken once every vector is final.
  std::vector<PendingChunk> pending;
  for (BatchDocument& item : items) {
    for (size_t c = 0; c < item.chunks.size(); ++c) {
      pending.push_back({&item.chunks[c], &item.inputs[c]});
    }
  }
  chunks_reused +=
      encode_chunks(encoder_, embedder_.get(), *store_, settings_, pending, kEncodeBatch);
  return items;
}

void IndexFolder::commit(std::vector<BatchDocument>& items, IndexReport& report) {
  const int64_t generation = read_generation(*store_, kStoreGeneration) + 1;
  const BatchWrite written = write_batch(*store_, items, generation);
  follow_committed(written, generation, *store_, *faiss_, *kv_cache_, dir_);
  count_batch(items, written, report);
}

bool IndexFolder::remove(const std::string& external_id) {
  const int64_t generation = read_generation(*store_, kStoreGeneration) + 1;
  bool found = false;
  BatchWrite written;
  store_->write_transaction([&] {
    const auto doc = store_->find_document(external_id);
    if (!doc) return;
    found = true;
    written.removed = store_->remove_document(doc->id);
    write_generation(*store_, kStoreGeneration, generation);
  });
  if (found) follow_committed(written, generation, *store_, *faiss_, *kv_cache_, dir_);
  return found;
}

// ---------------------------------------------------------------- reading

IndexStats IndexFolder::stats() const {
  IndexStats s;
  s.store = store_->stats();
  s.faiss_vectors = faiss_->size();
  s.faiss_factory = faiss_->factory();
  std::error_code ec;
  const auto faiss_bytes = fs::file_size(faiss_path(dir_), ec);
  s.faiss_file_bytes = ec ? 0 : static_cast<int64_t>(faiss_bytes);
  s.model_dir = model_->dir;
  s.model_fingerprint = model_->fingerprint;
  s.embedder_dir = embedder_ ? embedder_->dir() : "";
  s.embedder_fingerprint = embedder_ ? embedder_->fingerprint() : kNoEmbedder;
  s.embedding_dim = embedding_dim();
  s.settings = settings_;
  // The blob of (matrices, tokens, cols) grows by exactly this per token.
  const bool kv = settings_.cache == CacheGranularity::kKv;
  const int64_t matrices = kv ? 2 * model_->config.num_decoder_layers : 1;
  const int64_t cols = kv ? model_->config.inner_dim() : model_->config.d_model;
  s.memory_bytes_per_token =
      static_cast<int64_t>(kv_blob_size(settings_.kv_dtype, matrices, 2, cols) -
                           kv_blob_size(settings_.kv_dtype, matrices, 1, cols));
  s.kv_cache_bytes_used = kv_cache_->bytes_used();
  s.kv_cache_hits = kv_cache_->hits();
  s.kv_cache_misses = kv_cache_->misses();
  return s;
}

}  // namespace kvrag
