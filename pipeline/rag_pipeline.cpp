// RagPipeline: opening and creating an index folder, the enum names, and the
// writing half (add_documents, remove_document). The question-answering half
// is in answering.cpp.
#include "pipeline/rag_pipeline.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <span>
#include <string_view>
#include <unordered_set>

#include "core/error.h"
#include "pipeline/document_encoder.h"
#include "pipeline/index_meta.h"
#include "pipeline/kv_ram_cache.h"
#include "retriever/faiss_index.h"

namespace kvrag {
namespace {
namespace fs = std::filesystem;

constexpr const char* kStoreFile = "store.sqlite";
constexpr const char* kFaissFile = "vectors.faiss";
constexpr const char* kWriteLockFile = "write.lock";
// Chunk prompts per T5Encoder::encode_batch call: bounds the encoder's
// working memory whatever the document batch holds.
constexpr int64_t kEncodeBatch = 32;

std::string store_path(const std::string& dir) { return (fs::path(dir) / kStoreFile).string(); }
std::string faiss_path(const std::string& dir) { return (fs::path(dir) / kFaissFile).string(); }

// An advisory flock(2) on DIR/write.lock, held for one write call
// (add_documents, remove_document): a second process writing the same folder
// at the same time fails at once instead of interleaving its vectors.faiss
// with ours. Error(kUnavailable) while another holds it; the kernel drops the
// lock if the process dies.
class WriteLock {
 public:
  explicit WriteLock(const std::string& dir) {
    const std::string path = (fs::path(dir) / kWriteLockFile).string();
    fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    KVRAG_CHECK(fd_ >= 0, kIo, "cannot open ", path, ": ", std::strerror(errno));
    if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
      const int err = errno;
      ::close(fd_);
      KVRAG_CHECK(err != EWOULDBLOCK, kUnavailable, "index ", dir,
                  " is being written by another process");
      KVRAG_THROW(kIo, "cannot lock ", path, ": ", std::strerror(err));
    }
  }
  ~WriteLock() { ::close(fd_); }
  WriteLock(const WriteLock&) = delete;
  WriteLock& operator=(const WriteLock&) = delete;

 private:
  int fd_ = -1;
};

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// Parses one of `names` (indexed by the enum's value) or throws naming `what`.
template <typename Enum, size_t N>
Enum parse_enum(const std::string& name, const char* const (&names)[N], const char* what) {
  for (size_t i = 0; i < N; ++i) {
    if (name == names[i]) return static_cast<Enum>(i);
  }
  std::string expected;
  for (size_t i = 0; i < N; ++i) expected += std::string(i ? ", " : "") + names[i];
  KVRAG_THROW(kInvalidArgument, "unknown ", what, " '", name, "' (expected ", expected, ")");
}

constexpr const char* kGranularityNames[] = {"kv", "hidden"};
constexpr const char* kModeNames[] = {"cached", "concat", "fid"};
constexpr const char* kRetrieverNames[] = {"dense", "bm25", "hybrid"};

void check_settings(const IndexSettings& s) {
  KVRAG_CHECK(s.chunking.max_tokens > 0, kInvalidArgument, "chunk tokens must be > 0, got ",
              s.chunking.max_tokens);
  KVRAG_CHECK(s.chunking.overlap >= 0 && s.chunking.overlap < s.chunking.max_tokens,
              kInvalidArgument, "overlap must be in [0, chunk tokens ", s.chunking.max_tokens,
              "), got ", s.chunking.overlap);
  KVRAG_CHECK(!s.faiss_factory.empty(), kInvalidArgument, "the FAISS factory string is empty");
  KVRAG_CHECK(s.prompts.chunk.find("{text}") != std::string::npos, kInvalidArgument,
              "the chunk prompt template '", s.prompts.chunk, "' has no {text}");
}

void check_document(const Document& doc) {
  KVRAG_CHECK(!doc.external_id.empty(), kInvalidArgument, "a document has an empty id (source '",
              doc.source, "')");
  KVRAG_CHECK(!doc.text.empty(), kInvalidArgument, "document '", doc.external_id, "' has no text");
}

void check_same_model(const std::string& dir, const IndexMeta& meta, const T5Model& model) {
  KVRAG_CHECK(model.fingerprint == meta.model_fingerprint, kInvalidArgument, "the index ", dir,
              " was built with the model ", meta.model_dir, " (fingerprint ",
              meta.model_fingerprint, "), not with the model ", model.dir, " (fingerprint ",
              model.fingerprint, ")");
  KVRAG_CHECK(meta.embedding_dim == model.config.d_model, kFormat, store_path(dir),
              ": embedding_dim ", meta.embedding_dim, " differs from the model's d_model ",
              model.config.d_model);
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

// One document of a batch on its way into the store.
struct BatchDocument {
  const Document* doc = nullptr;
  std::string content_hash;
  bool unchanged = false;
  std::vector<NewChunk> chunks;
  std::vector<std::vector<int32_t>> prompts;  // parallel to chunks
  int64_t id = 0;                             // store row id once known
  bool replaced = false;
};

// Chunks, hashes and encodes (or reuses) the documents of one batch, outside
// any transaction so that readers wait only for the write. A document whose
// stored content hash is equal is marked unchanged and not chunked.
std::vector<BatchDocument> prepare_batch(std::span<const Document* const> docs,
                                         const T5Encoder& encoder, const Store& store,
                                         const IndexSettings& settings, int64_t& chunks_reused) {
  const T5Model& model = encoder.model();
  std::vector<BatchDocument> items(docs.size());
  for (size_t i = 0; i < docs.size(); ++i) {
    BatchDocument& item = items[i];
    item.doc = docs[i];
    item.content_hash = document_content_hash(model, settings, *docs[i]);
    const auto existing = store.find_document(docs[i]->external_id);
    if (existing && existing->content_hash == item.content_hash) {
      item.unchanged = true;
      item.id = existing->id;
      continue;
    }
    item.chunks = chunk_document(model, settings, *docs[i], item.prompts);
  }
  // Pointers into the items' chunk vectors: taken once every vector is final.
  std::vector<PendingChunk> pending;
  for (BatchDocument& item : items) {
    for (size_t c = 0; c < item.chunks.size(); ++c) {
      pending.push_back({&item.chunks[c], &item.prompts[c]});
    }
  }
  chunks_reused += encode_chunks(encoder, store, settings, pending, kEncodeBatch);
  return items;
}

// What one write transaction changed, for FAISS and the RAM cache.
struct BatchWrite {
  std::vector<int64_t> removed;  // chunk ids of replaced documents
  std::vector<int64_t> added;    // new chunk ids
  std::vector<float> vectors;    // (added, dim) their embeddings
  int64_t memory_bytes = 0;
};

// The documents of `docs` whose external id does not come again later, in
// input order: of a repeated id the last wins, as if each were added in turn.
// Done before batching, since the "unchanged" test compares with the store
// only: an earlier copy could otherwise replace the stored document while a
// later copy equal to the stored one was skipped as unchanged.
std::vector<const Document*> last_of_each_id(const std::vector<Document>& docs) {
  std::unordered_set<std::string_view> seen;
  std::vector<const Document*> kept;
  for (auto it = docs.rbegin(); it != docs.rend(); ++it) {
    if (seen.insert(it->external_id).second) kept.push_back(&*it);
  }
  std::reverse(kept.begin(), kept.end());
  return kept;
}

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

// ---------------------------------------------------------------- enum names

const char* cache_granularity_name(CacheGranularity g) {
  return kGranularityNames[static_cast<int>(g)];
}
CacheGranularity parse_cache_granularity(const std::string& name) {
  return parse_enum<CacheGranularity>(name, kGranularityNames, "cache granularity");
}
const char* mode_name(Mode mode) { return kModeNames[static_cast<int>(mode)]; }
Mode parse_mode(const std::string& name) { return parse_enum<Mode>(name, kModeNames, "mode"); }
const char* retriever_name(RetrieverKind kind) { return kRetrieverNames[static_cast<int>(kind)]; }
RetrieverKind parse_retriever(const std::string& name) {
  return parse_enum<RetrieverKind>(name, kRetrieverNames, "retriever");
}

// ---------------------------------------------------------------- opening

std::unique_ptr<RagPipeline> RagPipeline::create(const std::string& dir,
                                                 const std::string& model_dir,
                                                 const IndexSettings& settings,
                                                 const OpenOptions& options) {
  check_settings(settings);
  KVRAG_CHECK(!exists(dir), kInvalidArgument, "the folder ", dir, " already holds an index (",
              kStoreFile, "); open it or choose another folder");
  auto model = load_t5_model(model_dir);
  model->require_tokenizer();
  // Built once here only to reject a factory string before anything is written.
  FaissIndex(model->config.d_model, settings.faiss_factory);

  std::error_code ec;
  fs::create_directories(dir, ec);
  KVRAG_CHECK(!ec, kIo, "cannot create the index folder ", dir, ": ", ec.message());
  auto store = std::make_unique<Store>(store_path(dir));
  IndexMeta meta;
  meta.model_dir = fs::absolute(model_dir).lexically_normal().string();
  meta.model_fingerprint = model->fingerprint;
  meta.embedding_dim = model->config.d_model;
  meta.settings = settings;
  store->write_transaction([&] { write_index_meta(*store, meta); });
  return std::unique_ptr<RagPipeline>(
      new RagPipeline(dir, std::move(model), std::move(store), settings, options));
}

std::unique_ptr<RagPipeline> RagPipeline::open(const std::string& dir, const OpenOptions& options) {
  const std::string path = store_path(dir);
  KVRAG_CHECK(fs::is_regular_file(path), kNotFound, "no index in ", dir, " (", path,
              " does not exist)");
  auto store = std::make_unique<Store>(path);
  const IndexMeta meta = read_index_meta(*store);
  auto model = load_t5_model(options.model_dir.empty() ? meta.model_dir : options.model_dir);
  check_same_model(dir, meta, *model);
  return std::unique_ptr<RagPipeline>(
      new RagPipeline(dir, std::move(model), std::move(store), meta.settings, options));
}

bool RagPipeline::exists(const std::string& dir) { return fs::exists(store_path(dir)); }

std::unique_ptr<RagPipeline> RagPipeline::open_or_create(const std::string& dir,
                                                         const std::string& model_dir,
                                                         const IndexSettings& settings,
                                                         const OpenOptions& options) {
  if (exists(dir)) {
    OpenOptions with_model = options;
    if (with_model.model_dir.empty()) with_model.model_dir = model_dir;
    return open(dir, with_model);
  }
  KVRAG_CHECK(!model_dir.empty(), kInvalidArgument, "no index in ", dir,
              " yet: give the model folder to create one");
  return create(dir, model_dir, settings, options);
}

RagPipeline::RagPipeline(std::string dir, std::shared_ptr<const T5Model> model,
                         std::unique_ptr<Store> store, IndexSettings settings,
                         const OpenOptions& options)
    : dir_(std::move(dir)),
      model_(model),
      encoder_(model),
      decoder_(model),
      store_(std::move(store)),
      kv_cache_(std::make_unique<KvRamCache>(options.kv_cache_bytes)),
      settings_(std::move(settings)) {
  faiss_ = load_or_rebuild_faiss(*store_, dir_, model_->config.d_model, settings_.faiss_factory);
}

RagPipeline::~RagPipeline() = default;

// ---------------------------------------------------------------- writing

IndexReport RagPipeline::add_documents(const std::vector<Document>& docs, int64_t batch,
                                       const ProgressCallback& progress) {
  KVRAG_CHECK(batch > 0, kInvalidArgument, "batch must be > 0, got ", batch);
  for (const Document& doc : docs) check_document(doc);
  const std::vector<const Document*> kept = last_of_each_id(docs);
  std::lock_guard<std::mutex> lock(write_mutex_);
  const WriteLock folder_lock(dir_);
  const auto start = std::chrono::steady_clock::now();
  IndexReport report;
  IndexProgress state;
  state.documents_total = static_cast<int64_t>(kept.size());

  for (size_t begin = 0; begin < kept.size(); begin += static_cast<size_t>(batch)) {
    const size_t end = std::min(kept.size(), begin + static_cast<size_t>(batch));
    std::vector<BatchDocument> items =
        prepare_batch(std::span(kept).subspan(begin, end - begin), encoder_, *store_, settings_,
                      report.chunks_reused);
    BatchWrite written;
    {
      // Readers wait only for the commit and the FAISS/cache update, never
      // for the encoding done in prepare_batch.
      const auto state_lock = lock_for_writing();
      const int64_t generation = read_generation(*store_, kStoreGeneration) + 1;
      written = write_batch(*store_, items, generation);
      follow_committed(written, generation, *store_, *faiss_, *kv_cache_, dir_);
    }
    count_batch(items, written, report);
    state.documents_done = static_cast<int64_t>(end);
    state.chunks_done = report.chunks_added;
    state.seconds = seconds_since(start);
    if (progress) progress(state);
  }
  report.seconds = seconds_since(start);
  return report;
}

bool RagPipeline::remove_document(const std::string& external_id) {
  std::lock_guard<std::mutex> lock(write_mutex_);
  const WriteLock folder_lock(dir_);
  const auto state_lock = lock_for_writing();
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

std::unique_lock<std::shared_mutex> RagPipeline::lock_for_writing() {
  const std::lock_guard<std::mutex> turnstile(state_turnstile_);
  return std::unique_lock<std::shared_mutex>(state_mutex_);
}

// ---------------------------------------------------------------- reading

std::shared_lock<std::shared_mutex> RagPipeline::lock_for_reading() const {
  const std::lock_guard<std::mutex> turnstile(state_turnstile_);
  return std::shared_lock<std::shared_mutex>(state_mutex_);
}

std::optional<DocumentRecord> RagPipeline::find_document(const std::string& external_id) const {
  const auto lock = lock_for_reading();
  return store_->find_document(external_id);
}

std::vector<ChunkRecord> RagPipeline::document_chunks(int64_t document_id) const {
  const auto lock = lock_for_reading();
  return store_->document_chunks(document_id);
}

IndexStats RagPipeline::stats() const {
  const auto lock = lock_for_reading();
  IndexStats s;
  s.store = store_->stats();
  s.faiss_vectors = faiss_->size();
  s.faiss_factory = faiss_->factory();
  std::error_code ec;
  const auto faiss_bytes = fs::file_size(faiss_path(dir_), ec);
  s.faiss_file_bytes = ec ? 0 : static_cast<int64_t>(faiss_bytes);
  s.model_dir = model_->dir;
  s.model_fingerprint = model_->fingerprint;
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
