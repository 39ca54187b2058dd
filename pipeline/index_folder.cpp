#include "pipeline/index_folder.h"

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <optional>
#include <unordered_set>

#include "core/error.h"
#include "data/kv_blob.h"
#include "pipeline/document_encoder.h"
#include "pipeline/index_meta.h"
#include "pipeline/write_lock.h"

namespace kvrag {

// What one write transaction changed, for the blobs, FAISS and the RAM cache.
struct BatchWrite {
  int64_t generation = 0;        // the store generation it committed
  std::vector<int64_t> removed;  // chunk ids of replaced documents
  std::vector<int64_t> added;    // new chunk ids
  std::vector<float> vectors;    // (added, dim) their embeddings
  int64_t memory_bytes = 0;
};

namespace {
namespace fs = std::filesystem;

constexpr const char* kStoreFile = "store.sqlite";
constexpr const char* kFaissFile = "vectors.faiss";
// Chunk prompts per T5Encoder::encode_batch call: bounds the encoder's
// working memory whatever the document batch holds.
constexpr int64_t kEncodeBatch = 32;

std::string store_path(const std::string& dir) { return (fs::path(dir) / kStoreFile).string(); }
std::string faiss_path(const std::string& dir) { return (fs::path(dir) / kFaissFile).string(); }

// An index is a folder (store.sqlite and vectors.faiss in it) or a
// postgresql:// URI: its stores in PostgreSQL (and a Redis Cluster, blobs=)
// shared by every process that opens it, FAISS built in each one's memory
// from the stored embeddings, with no file.
bool is_uri(const std::string& index) { return is_store_uri(index); }
std::string store_location(const std::string& index) {
  return is_uri(index) ? index : store_path(index);
}
// Creates the folder of an index at `index` (nothing for a URI).
void create_folder(const std::string& index) {
  if (is_uri(index)) return;
  std::error_code ec;
  fs::create_directories(index, ec);
  KVRAG_CHECK(!ec, kIo, "cannot create the index folder ", index, ": ", ec.message());
}
// Where vectors.faiss lives; empty for a URI.
std::string faiss_file(const std::string& index) {
  return is_uri(index) ? std::string() : faiss_path(index);
}

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

// Saves vectors.faiss at `path` (none: a URI's index keeps no file) and
// records that it matches store generation `generation` (see
// read_faiss_generation in index_meta.h).
void save_faiss(const VectorIndex& index, MetadataStore& metadata, const std::string& path,
                int64_t generation) {
  if (path.empty()) return;
  index.save(path);
  write_faiss_generation(metadata, generation);
}

// vectors.faiss at `path` when it holds exactly the store's chunk ids and was
// saved at store generation `generation`; otherwise an index built from the
// stored embeddings (and saved, unless `path` is empty). A file FAISS cannot
// read counts as stale.
std::unique_ptr<VectorIndex> load_or_rebuild_faiss(MetadataStore& metadata, const std::string& path,
                                                   int64_t generation, int64_t dim,
                                                   const std::string& factory) {
  const auto check_dim = [&](int64_t id, std::span<const float> embedding) {
    KVRAG_CHECK(static_cast<int64_t>(embedding.size()) == dim, kFormat, metadata.location(),
                ": chunk ", id, " has an embedding of ", embedding.size(), " values, expected ",
                dim);
  };
  // Ids first: when the file is current, no embedding is held in memory.
  std::vector<int64_t> ids;
  metadata.for_each_embedding([&](int64_t id, std::span<const float> embedding) {
    check_dim(id, embedding);
    ids.push_back(id);
  });
  if (!path.empty() && read_faiss_generation(metadata) == generation && fs::exists(path)) {
    try {
      auto index = load_vector_index(path, dim, factory);
      if (index->ids() == ids) return index;
    } catch (const Error&) {
      // Unreadable or truncated: rebuilt below from the source of truth.
    }
  }
  // The ids again, beside their vectors: another process may have committed
  // since the first pass, and ids paired with other chunks' vectors would
  // retrieve the wrong chunks without an error.
  const size_t expected = ids.size();
  ids.clear();
  std::vector<float> vectors;
  vectors.reserve(expected * static_cast<size_t>(dim));
  metadata.for_each_embedding([&](int64_t id, std::span<const float> embedding) {
    check_dim(id, embedding);
    ids.push_back(id);
    vectors.insert(vectors.end(), embedding.begin(), embedding.end());
  });
  auto index = make_vector_index(dim, factory);
  if (!ids.empty()) index->add(ids, vectors);
  save_faiss(*index, metadata, path, generation);
  return index;
}

// Adds the document of `item` with its chunks and their memory blobs.
// Blobs go in as each chunk is added: a blob store that is not the
// metadata's own thus holds them all before the metadata commits.
void add_item(MetadataStore& metadata, BlobStore& blobs, BatchDocument& item, BatchWrite& w) {
  item.id = metadata.add_document(*item.doc, item.content_hash);
  for (size_t c = 0; c < item.chunks.size(); ++c) {
    const NewChunk& chunk = item.chunks[c];
    const int64_t chunk_id = metadata.add_chunk(item.id, chunk);
    blobs.put(chunk_id, item.memories[c]);
    w.added.push_back(chunk_id);
    w.vectors.insert(w.vectors.end(), chunk.embedding.begin(), chunk.embedding.end());
    w.memory_bytes += static_cast<int64_t>(item.memories[c].bytes.size());
  }
}

// Writes the batch (replacing documents of equal external id) and advances
// the store generation, all in one metadata transaction.
BatchWrite write_batch(MetadataStore& metadata, BlobStore& blobs,
                       std::vector<BatchDocument>& items) {
  BatchWrite w;
  metadata.write_transaction([&] {
    for (BatchDocument& item : items) {
      if (item.unchanged) continue;
      if (const auto old = metadata.find_document(item.doc->external_id)) {
        const std::vector<int64_t> ids = metadata.remove_document(old->id);
        w.removed.insert(w.removed.end(), ids.begin(), ids.end());
        item.replaced = true;
      }
      add_item(metadata, blobs, item, w);
    }
    w.generation = metadata.advance_generation();
  });
  return w;
}

// Brings what follows the committed metadata in step with write `w`: the
// blobs of removed chunks go (only now, so that a crash before leaves blobs
// nothing names rather than chunks without blobs; store.sqlite's went with
// their chunks already), then the RAM cache, FAISS and its file.
void follow_store(const BatchWrite& w, MetadataStore& metadata, BlobStore& blobs,
                  VectorIndex& faiss, KvRamCache& cache, const std::string& faiss_path) {
  if (!w.removed.empty()) blobs.remove(w.removed);
  for (const int64_t id : w.removed) cache.erase(id);
  if (!w.removed.empty()) faiss.remove(w.removed);
  if (!w.added.empty()) faiss.add(w.added, w.vectors);
  save_faiss(faiss, metadata, faiss_path, w.generation);
}

// Makes `faiss` hold exactly the store's embeddings, in place (readers may
// be searching it): ids the store lacks are removed, missing ones added.
// Returns the ids removed.
std::vector<int64_t> resync_faiss(VectorIndex& faiss, const MetadataStore& metadata) {
  const std::vector<int64_t> held = faiss.ids();
  const std::unordered_set<int64_t> held_set(held.begin(), held.end());
  std::unordered_set<int64_t> stored;
  std::vector<int64_t> missing;
  std::vector<float> vectors;
  metadata.for_each_embedding([&](int64_t id, std::span<const float> embedding) {
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
  return extra;
}

// follow_store for a write the metadata store has committed. The commit cannot be undone,
// so when following fails part way (a FAISS error, vectors.faiss not
// writable) the in-memory FAISS is re-synced with the store before the error
// goes on: otherwise searches would silently miss committed chunks, or
// return removed ones, until a restart. vectors.faiss keeps its older
// generation and is rebuilt from the store at the next open.
void follow_committed(const BatchWrite& w, MetadataStore& metadata, BlobStore& blobs,
                      VectorIndex& faiss, KvRamCache& cache, const std::string& faiss_path) {
  try {
    follow_store(w, metadata, blobs, faiss, cache, faiss_path);
  } catch (...) {
    resync_faiss(faiss, metadata);
    throw;
  }
}

StoreStats store_stats(const MetadataStore& metadata, const BlobStore& blobs) {
  const MetadataStats m = metadata.stats();
  const BlobStats b = blobs.stats();
  return {.documents = m.documents,
          .chunks = m.chunks,
          .memory_bytes = b.bytes,
          .text_bytes = m.text_bytes,
          .embedding_bytes = m.embedding_bytes,
          .memory_tokens = b.tokens,
          .file_bytes = m.storage_bytes};
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

// Writes a new index's meta in one write transaction, after checking
// again inside it that no other process made `dir` an index meanwhile: two
// creators of one new index (two `serve --model` nodes on a fresh schema)
// both passed the caller's check while loading the model, and the second
// overwrote the first's settings while the first wrote chunks under its
// own. And a new index starts from an empty blob namespace: chunk ids start
// at 1 in every schema, so two indexes writing one Redis Cluster under one
// key prefix (schemas of one name in two databases) would read each other's
// K/V, each blob valid, as their own chunks'.
void write_new_index_meta(IndexStores& stores, const std::string& dir, const IndexMeta& meta) {
  MetadataStore& metadata = *stores.metadata;
  metadata.write_transaction([&] {
    KVRAG_CHECK(!holds_index_meta(metadata), kInvalidArgument, displayed_location(dir),
                " was made an index by another process meanwhile; open it, or choose another ",
                is_uri(dir) ? "schema" : "folder");
    const BlobStats held = stores.blobs->stats();
    KVRAG_CHECK(held.bytes == 0, kInvalidArgument, "the blob store of ", displayed_location(dir),
                " already holds ", held.bytes,
                " bytes of K/V under this index's key prefix, another index's or a dropped one's: "
                "give the blob store its own prefix (blobs=redis://…?prefix=NAME) or delete its "
                "keys");
    write_index_meta(metadata, meta);
  });
}

}  // namespace

// ---------------------------------------------------------------- opening

std::unique_ptr<IndexFolder> IndexFolder::create(const std::string& dir,
                                                 const std::string& model_dir,
                                                 const IndexSettings& settings,
                                                 const OpenOptions& options) {
  check_settings(settings);
  KVRAG_CHECK(!exists(dir), kInvalidArgument, is_uri(dir) ? "" : "the folder ",
              displayed_location(dir), " already holds an index (",
              is_uri(dir) ? "its meta" : kStoreFile, "); open it or choose another ",
              is_uri(dir) ? "schema" : "folder");
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
  make_vector_index(dim, settings.faiss_factory);

  create_folder(dir);
  IndexStores stores = open_index_stores(store_location(dir));
  IndexMeta meta;
  meta.model_dir = fs::absolute(model_dir).lexically_normal().string();
  meta.model_fingerprint = model->fingerprint;
  meta.tokenizer_fingerprint = tokenizer_fingerprint(model_dir);
  meta.embedding_dim = dim;
  meta.embedder_fingerprint = embedder ? embedder->fingerprint() : kNoEmbedder;
  meta.settings = recorded;
  write_new_index_meta(stores, dir, meta);
  return std::unique_ptr<IndexFolder>(new IndexFolder(dir, std::move(model), std::move(embedder),
                                                      std::move(stores), recorded, options));
}

std::unique_ptr<IndexFolder> IndexFolder::open(const std::string& dir, const OpenOptions& options) {
  if (!is_uri(dir)) {
    const std::string path = store_path(dir);
    KVRAG_CHECK(fs::is_regular_file(path), kNotFound, "no index in ", dir, " (", path,
                " does not exist)");
  }
  IndexStores stores = open_index_stores(store_location(dir));
  KVRAG_CHECK(!is_uri(dir) || holds_index_meta(*stores.metadata), kNotFound, "no index at ",
              displayed_location(dir),
              " (its schema holds none yet: create one with kvrag index --model)");
  const IndexMeta meta = read_index_meta(*stores.metadata);
  std::shared_ptr<const T5Model> model = options.model;
  std::string model_dir = options.model_dir.empty() ? meta.model_dir : options.model_dir;
  if (model) {
    model_dir = model->dir;
  } else {
    model = load_t5_model(model_dir, options.weights);
  }
  check_same_model(dir, meta, *model, model_dir);
  auto embedder = open_embedder(dir, meta, *model, options.embedder_dir);
  return std::unique_ptr<IndexFolder>(new IndexFolder(dir, std::move(model), std::move(embedder),
                                                      std::move(stores), meta.settings, options));
}

bool IndexFolder::exists(const std::string& dir) {
  if (!is_uri(dir)) return fs::exists(store_path(dir));
  return holds_index_meta(*open_index_stores(dir).metadata);
}

bool IndexFolder::shared() const { return is_uri(location_); }

namespace {

// One document of `from` as `to` stores it.
void copy_document(const MetadataStore& from_metadata, const BlobStore& from_blobs,
                   MetadataStore& to_metadata, BlobStore& to_blobs, int64_t document_id,
                   CopyReport& report) {
  const DocumentRecord record = from_metadata.document(document_id);
  Document doc;
  doc.external_id = record.external_id;
  doc.title = record.title;
  doc.source = record.source;
  doc.text = record.text;
  doc.metadata_json = record.metadata_json;
  const int64_t id = to_metadata.add_document(doc, record.content_hash);
  const std::vector<ChunkRecord> chunks = from_metadata.document_chunks(document_id);
  std::vector<int64_t> chunk_ids;
  for (const ChunkRecord& chunk : chunks) chunk_ids.push_back(chunk.id);
  const std::vector<std::vector<float>> embeddings = from_metadata.chunk_embeddings(chunk_ids);
  auto blobs = from_blobs.get_many(chunk_ids);
  for (size_t c = 0; c < chunks.size(); ++c) {
    KVRAG_CHECK(
        blobs[c].has_value(), kNotFound, "chunk ", chunks[c].id, " of document '", doc.external_id,
        "' has no memory in ", from_metadata.location(),
        "'s blob store (a Redis Cluster may lose or evict one): nothing to copy; remove the "
        "document (kvrag rm) and index it again, since indexing it unchanged skips it");
    // Read to check it (checksum, finite values) and to count its tokens.
    const int64_t tokens =
        read_kv_blob(*blobs[c], str_cat("memory of chunk ", chunks[c].id)).matrices.at(0).rows;
    NewChunk chunk{.position = chunks[c].position,
                   .text = chunks[c].text,
                   .token_ids = chunks[c].token_ids,
                   .content_hash = chunks[c].content_hash,
                   .embedding = embeddings[c]};
    const int64_t copied = to_metadata.add_chunk(id, chunk);
    report.memory_bytes += static_cast<int64_t>(blobs[c]->size());
    to_blobs.put(copied, MemoryBlob{.bytes = std::move(*blobs[c]), .tokens = tokens});
  }
  report.chunks += static_cast<int64_t>(chunks.size());
  ++report.documents;
}

// The ids of the documents of `metadata`, ascending: every stored document
// has at least one chunk (its text is not empty), so its chunks name it.
std::vector<int64_t> document_ids(const MetadataStore& metadata) {
  std::vector<int64_t> chunk_ids;
  metadata.for_each_embedding([&](int64_t id, std::span<const float>) { chunk_ids.push_back(id); });
  std::vector<int64_t> ids = metadata.chunk_documents(chunk_ids);
  std::sort(ids.begin(), ids.end());
  ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
  return ids;
}

}  // namespace

CopyReport IndexFolder::copy(const std::string& from, const std::string& to, int64_t batch,
                             const std::function<void(const CopyReport&)>& progress) {
  KVRAG_CHECK(batch > 0, kInvalidArgument, "batch must be > 0, got ", batch);
  KVRAG_CHECK(exists(from), kNotFound, "no index at ", displayed_location(from));
  KVRAG_CHECK(!exists(to), kInvalidArgument, displayed_location(to),
              " already holds an index; copy into an empty folder or schema");
  const auto start = std::chrono::steady_clock::now();
  const auto seconds = [&] {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  };
  create_folder(to);
  std::optional<WriteLock> to_lock;
  if (!is_uri(to)) to_lock.emplace(to, "kvrag copy");
  IndexStores source = open_index_stores(store_location(from));
  IndexStores target = open_index_stores(store_location(to));
  CopyReport report;
  source.metadata->write_transaction([&] {
    const IndexMeta meta = read_index_meta(*source.metadata);
    write_new_index_meta(target, to, meta);
    const std::vector<int64_t> ids = document_ids(*source.metadata);
    for (size_t begin = 0; begin < ids.size(); begin += static_cast<size_t>(batch)) {
      const size_t end = std::min(ids.size(), begin + static_cast<size_t>(batch));
      target.metadata->write_transaction([&] {
        for (size_t i = begin; i < end; ++i) {
          copy_document(*source.metadata, *source.blobs, *target.metadata, *target.blobs, ids[i],
                        report);
        }
        target.metadata->advance_generation();
      });
      report.seconds = seconds();
      if (progress) progress(report);
    }
  });
  report.seconds = seconds();
  return report;
}

IndexFolder::IndexFolder(std::string dir, std::shared_ptr<const T5Model> model,
                         std::shared_ptr<const SentenceEmbedder> embedder, IndexStores stores,
                         IndexSettings settings, const OpenOptions& options)
    : location_(std::move(dir)),
      dir_(displayed_location(location_)),
      faiss_path_(faiss_file(location_)),
      model_(model),
      encoder_(model),
      embedder_(std::move(embedder)),
      metadata_(std::move(stores.metadata)),
      blobs_(std::move(stores.blobs)),
      kv_cache_(std::make_unique<KvRamCache>(options.kv_cache_bytes)),
      settings_(std::move(settings)) {
  // Read before the embeddings: a write committed in between is then seen
  // as one to follow (catch_up), never missed.
  generation_ = metadata_->generation();
  vectors_ = load_or_rebuild_faiss(*metadata_, faiss_path_, generation_, embedding_dim(),
                                   settings_.faiss_factory);
}

int64_t IndexFolder::embedding_dim() const {
  return embedder_ ? embedder_->dim() : model_->config.d_model;
}

IndexFolder::~IndexFolder() = default;

// ---------------------------------------------------------------- writing

void IndexFolder::check_chunkable(const Document& doc) const {
  KVRAG_CHECK(gives_chunks(*model_, doc.text), kInvalidArgument, "document '", doc.external_id,
              "' gives no chunk: its text has no token the model's tokenizer keeps");
}

std::vector<BatchDocument> IndexFolder::prepare(std::span<const Document* const> docs,
                                                int64_t& chunks_reused) const {
  std::vector<BatchDocument> items(docs.size());
  for (size_t i = 0; i < docs.size(); ++i) {
    BatchDocument& item = items[i];
    item.doc = docs[i];
    item.content_hash = document_content_hash(*model_, embedder_.get(), settings_, *docs[i]);
    const auto existing = metadata_->find_document(docs[i]->external_id);
    if (existing && existing->content_hash == item.content_hash) {
      item.unchanged = true;
      item.id = existing->id;
      continue;
    }
    item.chunks = chunk_document(*model_, embedder_.get(), settings_, *docs[i], item.inputs);
    item.memories.resize(item.chunks.size());
  }
  // Pointers into the items' chunk vectors: taken once every vector is final.
  std::vector<PendingChunk> pending;
  for (BatchDocument& item : items) {
    for (size_t c = 0; c < item.chunks.size(); ++c) {
      pending.push_back({&item.chunks[c], &item.memories[c], &item.inputs[c]});
    }
  }
  chunks_reused += encode_chunks(encoder_, embedder_.get(), *metadata_, *blobs_, settings_, pending,
                                 kEncodeBatch);
  return items;
}

void IndexFolder::commit(std::vector<BatchDocument>& items, IndexReport& report) {
  const BatchWrite written = write_batch(*metadata_, *blobs_, items);
  follow(written);
  count_batch(items, written, report);
}

void IndexFolder::follow(const BatchWrite& written) {
  // Another process committed between this one's last look and this write:
  // its changes are not in `written`, so FAISS and the cache catch up whole.
  const bool others_wrote = written.generation != generation_ + 1;
  follow_committed(written, *metadata_, *blobs_, *vectors_, *kv_cache_, faiss_path_);
  if (others_wrote) {
    catch_up();
  } else {
    generation_ = written.generation;
  }
}

bool IndexFolder::behind() const { return metadata_->generation() != generation_; }

void IndexFolder::catch_up() {
  const int64_t generation = metadata_->generation();
  for (const int64_t id : resync_faiss(*vectors_, *metadata_)) kv_cache_->erase(id);
  generation_ = generation;
}

bool IndexFolder::remove(const std::string& external_id) {
  bool found = false;
  BatchWrite written;
  metadata_->write_transaction([&] {
    const auto doc = metadata_->find_document(external_id);
    if (!doc) return;
    found = true;
    written.removed = metadata_->remove_document(doc->id);
    written.generation = metadata_->advance_generation();
  });
  if (found) follow(written);
  return found;
}

// ---------------------------------------------------------------- reading

IndexStats IndexFolder::stats() const {
  IndexStats s;
  s.store = store_stats(*metadata_, *blobs_);
  s.shared = shared();
  s.faiss_vectors = vectors_->size();
  s.faiss_factory = vectors_->factory();
  std::error_code ec;
  const auto faiss_bytes = fs::file_size(faiss_path_, ec);
  s.faiss_file_bytes = ec ? 0 : static_cast<int64_t>(faiss_bytes);
  s.model_dir = model_->dir;
  s.model_fingerprint = model_->fingerprint;
  s.model_weights = model_->encoder_weights.shared.dtype();
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
  s.memories_reencoded = memories_reencoded_.load();
  return s;
}

}  // namespace kvrag
