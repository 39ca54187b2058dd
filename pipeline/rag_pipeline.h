// The one entry point that `kvrag` (CLI), the HTTP server and the benchmark
// call: an open index folder (store.sqlite + vectors.faiss + the model it was
// built with) that indexes documents and answers questions in three modes.
//
// Threads: ask/retrieve/answer/search and the read-only queries may run from
// many threads at once; add_documents and remove_document are serialised by
// an internal writer lock, and readers only ever see committed documents: a
// reader holds a shared lock across its retrieval and memory load, a writer
// holds it exclusively only while it commits to SQLite and brings FAISS and
// the RAM cache in step (encoding happens before, outside the lock). Decoding
// runs after the memory is built, without the lock.
//
// Processes: one process at a time may write an index folder. Each write
// call takes an advisory flock on DIR/write.lock and fails with
// Error(kUnavailable) "index DIR is being written by another process" while
// another process holds it. A RagPipeline keeps its FAISS index in memory,
// so it does not see another process's writes until it is opened again: a
// running `kvrag serve` answers from what it loaded, not from a later
// `kvrag index` or `kvrag rm` on its folder, until restarted.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <vector>

#include "data/chunker.h"
#include "data/document.h"
#include "data/kv_blob.h"
#include "data/store.h"
#include "decoder/generation.h"
#include "decoder/t5_decoder.h"
#include "encoder/t5_encoder.h"
#include "encoder/t5_model.h"

namespace kvrag {

class FaissIndex;
class KvRamCache;

// ---------------------------------------------------------------- settings

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

enum class Mode { kCached, kConcat, kFid };
const char* mode_name(Mode mode);
Mode parse_mode(const std::string& name);  // "cached" | "concat" | "fid"

enum class RetrieverKind { kDense, kBm25, kHybrid };
const char* retriever_name(RetrieverKind kind);
RetrieverKind parse_retriever(const std::string& name);  // "dense" | "bm25" | "hybrid"

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
};

struct OpenOptions {
  // The model folder; empty: the one recorded in the index. Either way its
  // fingerprint must equal the index's (Error(kInvalidArgument) naming both).
  std::string model_dir;
  int64_t kv_cache_bytes = 256ll << 20;  // RAM cache of chunk K/V, 0 disables it
};

// ---------------------------------------------------------------- indexing

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

// ---------------------------------------------------------------- asking

struct AskOptions {
  int64_t k = 5;  // 1..kMaxK
  Mode mode = Mode::kCached;
  RetrieverKind retriever = RetrieverKind::kDense;
  GenerationOptions generation{.max_new_tokens = 32};
};
constexpr int64_t kMaxK = 100;

// Caps on the encoder work of one request: the encoder builds a heads ×
// len² position bias and attention per sequence, so prompt lengths are
// bounded. Over a cap a request fails with Error(kInvalidArgument) naming
// the cap; nothing is truncated silently.
// The question's own tokens (the tokenized question, without the template
// or eos), for every mode and for retrieval queries.
constexpr int64_t kMaxQuestionTokens = 256;
// concat: tokens of the one joint prompt (question and all passages, eos
// included). Lower k (or use fid or cached) for more passages.
constexpr int64_t kMaxConcatTokens = 8192;
// fid: the sum over the chunks of each joint prompt's tokens. Each prompt is
// bounded by the question cap, kMaxTitleTokens and the chunk size, so with
// the default 64-token chunks k = kMaxK stays well below this.
constexpr int64_t kMaxFidTokens = 32768;
// A document title enters every chunk prompt (and fid/concat prompts) cut to
// its first kMaxTitleTokens tokens: the title belongs to the document, not to
// a request, so it is truncated, not rejected. The stored title is kept whole.
constexpr int64_t kMaxTitleTokens = 32;

struct RetrievedChunk {
  int64_t chunk_id = 0;
  int64_t document_id = 0;  // the store's row id
  std::string external_id;  // the caller's document id
  std::string title;
  std::string text;
  int64_t position = 0;  // chunk position in its document
  double score = 0.0;    // retriever score (inner product, −bm25 or RRF), higher is better
};

struct Source {
  RetrievedChunk chunk;
  // Share of the decoder's cross-attention mass on this chunk's tokens,
  // averaged over layers, heads and generated steps. Shares of all sources
  // plus the question's sum to 1.
  double attention = 0.0;
};

struct AskTimings {
  double retrieve_ms = 0.0;
  double load_kv_ms = 0.0;      // SQLite reads + blob decode (cached mode)
  double encode_ms = 0.0;       // encoder and K/V projection work for this question
  double first_token_ms = 0.0;  // from the start of answer() to the first generated token
  double decode_ms = 0.0;       // all decoder steps
  double total_ms = 0.0;
  int64_t generated_tokens = 0;
  double tokens_per_s = 0.0;     // generated_tokens / decode time
  int64_t kv_cache_hits = 0;     // chunks served from the RAM cache
  int64_t kv_cache_misses = 0;   // chunks read from SQLite
  int64_t store_bytes_read = 0;  // bytes of memory blobs read from SQLite
  int64_t memory_tokens = 0;     // positions the decoder cross-attended to
};

struct Answer {
  std::string text;
  std::vector<int32_t> ids;  // generated ids, without the start token
  Mode mode = Mode::kCached;
  std::vector<Source> sources;      // in retrieval order
  double question_attention = 0.0;  // cross-attention share on the question's own tokens
  AskTimings timings;
};

// The memory the decoder reads for one question in one mode, and where each
// chunk sits in it (RagPipeline::build_memory).
struct AnswerMemory {
  CrossKV kv;  // per decoder layer (memory tokens, inner_dim)
  // Per chunk, in the order given: its positions [first, second) in kv.
  // Positions in no span belong to the question alone. cached: the question
  // prompt, then each chunk's cached prompt; fid: each chunk's joint encoding
  // (question included); concat: the chunk's passage tokens in the joint prompt.
  std::vector<std::pair<int64_t, int64_t>> spans;
};

// Called with the text each new token adds (streaming).
using PieceCallback = std::function<void(const std::string& piece)>;

// ---------------------------------------------------------------- stats

struct IndexStats {
  StoreStats store;
  int64_t faiss_vectors = 0;
  std::string faiss_factory;
  int64_t faiss_file_bytes = 0;  // size of vectors.faiss on disk
  std::string model_dir;
  std::string model_fingerprint;
  IndexSettings settings;
  int64_t memory_bytes_per_token = 0;  // for the index's dtype and granularity
  int64_t kv_cache_bytes_used = 0;
  int64_t kv_cache_hits = 0;
  int64_t kv_cache_misses = 0;
};

class RagPipeline {
 public:
  // Creates a new index folder at `dir` (which must not hold a store yet)
  // for the model at `model_dir`. Error(kInvalidArgument) if `dir` already
  // holds an index or a setting is out of range.
  static std::unique_ptr<RagPipeline> create(const std::string& dir, const std::string& model_dir,
                                             const IndexSettings& settings,
                                             const OpenOptions& options = {});
  // Opens an existing index. Error(kNotFound) if `dir` holds no store.sqlite;
  // Error(kInvalidArgument) for a model whose fingerprint differs. A missing
  // or stale vectors.faiss is rebuilt from the stored embeddings.
  static std::unique_ptr<RagPipeline> open(const std::string& dir, const OpenOptions& options = {});
  // Whether `dir` holds an index (its store.sqlite exists).
  static bool exists(const std::string& dir);
  // open() when `dir` holds an index, create() otherwise (model_dir required then).
  static std::unique_ptr<RagPipeline> open_or_create(const std::string& dir,
                                                     const std::string& model_dir,
                                                     const IndexSettings& settings,
                                                     const OpenOptions& options = {});
  ~RagPipeline();

  // ---- writing (serialised)
  // Chunks, encodes, caches and indexes `docs`, `batch` documents per
  // transaction; a crash leaves each document complete or absent. A document
  // whose external id exists is replaced (or left alone when unchanged). Of
  // an external id given more than once in `docs` the last copy wins (and
  // report.ids lists it once). If SQLite commits but updating or saving
  // FAISS then fails, the in-memory FAISS is re-synced with the store before
  // the error is thrown (vectors.faiss is rebuilt at the next open).
  IndexReport add_documents(const std::vector<Document>& docs, int64_t batch = 16,
                            const ProgressCallback& progress = {});
  // Removes the document with all its rows and FAISS ids; false if absent.
  bool remove_document(const std::string& external_id);

  // ---- reading (concurrent)
  std::optional<DocumentRecord> find_document(const std::string& external_id) const;
  std::vector<ChunkRecord> document_chunks(int64_t document_id) const;
  // Top-k chunks for `query`. Error(kInvalidArgument) for an empty query or
  // k outside 1..kMaxK. k above the corpus size returns the corpus.
  std::vector<RetrievedChunk> retrieve(const std::string& query, int64_t k,
                                       RetrieverKind retriever) const;
  // Answers from the given chunks in options.mode (the benchmark calls this
  // with one retrieval shared by every mode); options.k/retriever unused.
  // A chunk removed from the index since it was retrieved (its document was
  // removed or replaced) fails the call with Error(kNotFound) naming the
  // chunk and its document, rather than answering from text the index no
  // longer holds: retrieve again. build_memory does the same.
  Answer answer(const std::string& question, const std::vector<RetrievedChunk>& chunks,
                const AskOptions& options, const PieceCallback& on_piece = {}) const;
  // The memory answer() decodes over (added for the exactness tests and the
  // benchmark): encodes what `mode` needs and, in cached mode, loads the
  // chunks' memories (RAM cache first). Fills encode_ms, load_kv_ms,
  // kv_cache_hits/misses, store_bytes_read and memory_tokens of `timings`.
  // Error(kInvalidArgument) for an empty question, fid with no chunks or a
  // prompt over the caps above; Error(kFormat) for a stored memory that does
  // not fit the model.
  AnswerMemory build_memory(const std::string& question, const std::vector<RetrievedChunk>& chunks,
                            Mode mode, AskTimings& timings) const;
  // retrieve + answer; timings.retrieve_ms filled in.
  Answer ask(const std::string& question, const AskOptions& options,
             const PieceCallback& on_piece = {}) const;

  IndexStats stats() const;
  const IndexSettings& settings() const { return settings_; }
  const T5Model& model() const { return *model_; }
  const std::string& dir() const { return dir_; }

 private:
  RagPipeline(std::string dir, std::shared_ptr<const T5Model> model, std::unique_ptr<Store> store,
              IndexSettings settings, const OpenOptions& options);

  // The question prompt (PromptTemplates::question) encoded, (tokens,
  // d_model): both the dense retrieval query and the head of the cached
  // memory, so ask() in cached mode encodes it once for both. The *_encoded
  // variants below take it as `question_hidden`, or encode it themselves
  // when it is null; otherwise they are retrieve() and build_memory(). Both
  // expect state_mutex_ held (shared) by the caller.
  Tensor encode_question(const std::string& question) const;
  std::vector<RetrievedChunk> retrieve_encoded(const std::string& query,
                                               const Tensor* question_hidden, int64_t k,
                                               RetrieverKind retriever) const;
  AnswerMemory build_memory_encoded(const std::string& question, const Tensor* question_hidden,
                                    const std::vector<RetrievedChunk>& chunks, Mode mode,
                                    AskTimings& timings) const;
  // Error(kNotFound) for a chunk no longer in the store (state_mutex_ held).
  // Cached mode is checked by its memory load instead.
  void require_current(const std::vector<RetrievedChunk>& chunks, Mode mode) const;
  // Generates over a built memory (no lock needed): the rest of answer().
  // `answer` holds the mode and the memory timings; `start` is answer()'s.
  void decode_answer(const AnswerMemory& memory, const std::vector<RetrievedChunk>& chunks,
                     const AskOptions& options, const PieceCallback& on_piece,
                     std::chrono::steady_clock::time_point start, Answer& answer) const;

  std::string dir_;
  std::shared_ptr<const T5Model> model_;
  T5Encoder encoder_;
  T5Decoder decoder_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<FaissIndex> faiss_;
  std::unique_ptr<KvRamCache> kv_cache_;
  IndexSettings settings_;
  std::mutex write_mutex_;  // one writer at a time
  // Readers (shared) against a writer's commit + FAISS/RAM-cache update
  // (exclusive), so that a reader's store, FAISS and cache reads all see
  // one committed state.
  mutable std::shared_mutex state_mutex_;
  // std::shared_mutex may prefer readers (glibc does): under a steady stream
  // of overlapping readers a writer would wait indefinitely. Both sides pass
  // this turnstile to take state_mutex_, and a writer holds it while it
  // waits, so new readers queue behind a waiting writer.
  mutable std::mutex state_turnstile_;
  std::shared_lock<std::shared_mutex> lock_for_reading() const;
  std::unique_lock<std::shared_mutex> lock_for_writing();
};

}  // namespace kvrag
