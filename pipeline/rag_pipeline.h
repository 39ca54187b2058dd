// The one entry point that `kvrag` (CLI), the HTTP server and the benchmark
// call: a thin facade over an open index folder (pipeline/index_folder.h),
// its Retriever, its MemoryBuilder and the decoder, that indexes documents
// and answers questions in three modes. It holds the locks; the parts below
// it hold none.
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
// so it would not see another process's writes until opened again; a
// long-lived reader (`kvrag serve`) therefore calls hold_write_lock(), and
// another process's `kvrag index` or `kvrag rm` on its folder is refused
// (naming the holder) until it stops: such writes go through its HTTP API.
//
// An index at a postgresql:// URI is shared by every process that opens it
// (serving nodes): writers serialise in PostgreSQL (its transaction
// advisory lock), there is no folder to lock, and before each read a
// RagPipeline compares the store generation with the one its FAISS and RAM
// cache reflect, catching up on the other processes' commits when they
// differ. A document committed through one node is thus found by the next
// question to any node.
#pragma once

#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <vector>

#include "data/document.h"
#include "data/metadata_store.h"
#include "decoder/t5_decoder.h"
#include "pipeline/answer.h"
#include "pipeline/ask_options.h"
#include "pipeline/decode_batcher.h"
#include "pipeline/index_folder.h"
#include "pipeline/index_settings.h"
#include "pipeline/memory_builder.h"
#include "pipeline/write_lock.h"
#include "retriever/retriever.h"

namespace kvrag {

class RagPipeline {
 public:
  // Creates a new index folder at `dir` (which must not hold a store yet)
  // for the model at `model_dir`, embedding with settings.embedder_dir when
  // set. Error(kInvalidArgument) if `dir` already holds an index or a
  // setting is out of range; an embedder folder in the wrong layout throws
  // SentenceEmbedder::load's errors.
  static std::unique_ptr<RagPipeline> create(const std::string& dir, const std::string& model_dir,
                                             const IndexSettings& settings,
                                             const OpenOptions& options = {});
  // Opens an existing index. Error(kNotFound) if `dir` holds no store.sqlite;
  // Error(kInvalidArgument) for a model or embedder whose fingerprint
  // differs, or an embedder given to an index built without one. A missing
  // or stale vectors.faiss is rebuilt from the stored embeddings.
  static std::unique_ptr<RagPipeline> open(const std::string& dir, const OpenOptions& options = {});
  // Whether `dir` holds an index (its store.sqlite exists).
  static bool exists(const std::string& dir);
  // open() when `dir` holds an index (with model_dir and settings.embedder_dir,
  // where given, as OpenOptions' folders), create() otherwise (model_dir
  // required then).
  static std::unique_ptr<RagPipeline> open_or_create(const std::string& dir,
                                                     const std::string& model_dir,
                                                     const IndexSettings& settings,
                                                     const OpenOptions& options = {});
  ~RagPipeline();

  // Takes DIR/write.lock for the pipeline's lifetime, leaving `holder` in it
  // ("kvrag serve, pid 12"), so that no other process writes the folder
  // behind this one's in-memory FAISS; this pipeline's own writes go on.
  // Error(kUnavailable) while another process writes the folder. Nothing for
  // an index at a URI, whose writers every reader follows.
  void hold_write_lock(const std::string& holder);

  // Greedy asks share decoder passes, up to `max_batch` sequences a pass,
  // each pass split over `threads` (pipeline/decode_batcher.h); beam search
  // still decodes alone. 1 (the default) decodes every ask alone. Call
  // before answering starts. Error(kInvalidArgument) for max_batch or
  // threads < 1.
  void batch_decoding(int64_t max_batch, int64_t threads);

  // ---- writing (serialised)
  // Chunks, encodes, caches and indexes `docs`, `batch` documents per
  // transaction; a crash leaves each document complete or absent. A document
  // whose external id exists is replaced (or left alone when unchanged). Of
  // an external id given more than once in `docs` the last copy wins (and
  // report.ids lists it once). If SQLite commits but updating or saving
  // FAISS then fails, the in-memory FAISS is re-synced with the store before
  // the error is thrown (vectors.faiss is rebuilt at the next open).
  // Each document's text is normalised first (normalize_text,
  // data/corpus_reader.h), whoever sends it.
  IndexReport add_documents(const std::vector<Document>& docs, int64_t batch = kDocumentsPerCommit,
                            const ProgressCallback& progress = {});
  // Removes the document with all its rows and FAISS ids; false if absent.
  bool remove_document(const std::string& external_id);

  // ---- reading (concurrent)
  std::optional<DocumentRecord> find_document(const std::string& external_id) const;
  std::vector<ChunkRecord> document_chunks(int64_t document_id) const;
  // The document and its chunks, read under one lock: read in two, a
  // replacement committed between them gave the old text with no chunks.
  std::optional<std::pair<DocumentRecord, std::vector<ChunkRecord>>> document_with_chunks(
      const std::string& external_id) const;
  // Top-k chunks for `query`. Error(kInvalidArgument) for an empty query or
  // k outside 1..kMaxK. k above the corpus size returns the corpus.
  std::vector<RetrievedChunk> retrieve(const std::string& query, int64_t k,
                                       RetrieverKind retriever) const;
  // Answers from the given chunks in options.mode (the benchmark calls this
  // with one retrieval shared by every mode); options.k/retriever unused.
  // Error(kInvalidArgument) for generation options outside the limits of
  // pipeline/ask_options.h.
  // A chunk removed from the index since it was retrieved (its document was
  // removed or replaced) fails the call with Error(kNotFound) naming the
  // chunk and its document, rather than answering from text the index no
  // longer holds: retrieve again. build_memory does the same.
  Answer answer(const std::string& question, const std::vector<RetrievedChunk>& chunks,
                const AskOptions& options, const PieceCallback& on_piece = {}) const;
  // The memory answer() decodes over, without the passage prior (added for
  // the exactness tests and the benchmark): encodes what `mode` needs and, in cached mode, loads
  // the chunks' memories (RAM cache first). Fills encode_ms, load_kv_ms, kv_cache_hits/misses,
  // store_bytes_read and memory_tokens of `timings`. Error(kInvalidArgument) for an empty question,
  // fid with no chunks or a prompt over the caps (pipeline/ask_options.h); Error(kFormat) for a
  // stored memory that does not fit the model.
  AnswerMemory build_memory(const std::string& question, const std::vector<RetrievedChunk>& chunks,
                            Mode mode, AskTimings& timings) const;
  // retrieve + answer; timings.retrieve_ms filled in. The question is
  // checked and tokenized once, and encoded at most once for both retrieval
  // and the cached memory. Error(kConflict) "the index DIR holds no
  // documents: …" in every mode when the index is empty.
  // options.deadline, when set, is checked before and after each stage
  // (retrieval, memory, decoding), before every encoder layer and every
  // decoder step: once it has passed the call throws Error(kDeadlineExceeded)
  // naming the stage; nothing is written, so nothing is left half-done.
  // answer() checks it likewise.
  Answer ask(const std::string& question, const AskOptions& options,
             const PieceCallback& on_piece = {}) const;

  // Error(kConflict) "the index DIR holds no documents: …" when the index
  // holds no chunk: ask()'s first check, for a caller that must refuse
  // before it starts answering (a streamed ask, before its headers are sent).
  void require_documents() const;
  // Error(kInvalidArgument) as ask() gives it for `question` (blank, over
  // kMaxQuestionTokens): for a caller that must refuse a question before
  // answering starts (a streamed ask's headers, an evaluation's file).
  void check_question(const std::string& question) const;

  IndexStats stats() const;
  const IndexSettings& settings() const { return folder_->settings(); }
  const T5Model& model() const { return *folder_->model(); }
  // The model, to share with another index of it (OpenOptions::model).
  const std::shared_ptr<const T5Model>& shared_model() const { return folder_->model(); }
  // The index's separate embedder, or null when the reader's encoder embeds.
  const SentenceEmbedder* embedder() const { return folder_->embedder(); }
  const T5Decoder& decoder() const { return decoder_; }
  const T5Encoder& encoder() const { return folder_->encoder(); }
  const std::string& dir() const { return folder_->dir(); }

 private:
  explicit RagPipeline(std::unique_ptr<IndexFolder> folder);

  // require_documents() for a caller that holds the read lock.
  void require_documents_locked() const;
  // Catches FAISS and the RAM cache up with commits of other processes
  // (IndexFolder::behind); called before each read, without a lock held.
  void follow_other_writers() const;
  // The typed query of a request's question, checked once (pipeline/questions.h).
  Query query_for(const std::string& text, const char* field) const;
  // The log-weights of `chunks` by the passage prior (pipeline/passage_prior.h)
  // when options ask for it and the reader declares its retrieval
  // temperature, without a separate embedder (whose similarities are on
  // another scale); empty otherwise. Embeds `query` if it is not yet. Reads
  // the chunks' stored embeddings: call with the read lock.
  std::vector<float> passage_weights(Query& query, const std::vector<RetrievedChunk>& chunks,
                                     const AskOptions& options) const;
  // Builds the memory of `chunks` and weighs it by passage_weights. Cached
  // mode reads the chunks' K/V from the store under `lock`; concat and fid
  // encode the texts `chunks` carry after releasing it, so that a writer,
  // and every reader queued behind the writer, does not wait seconds for
  // a long prompt's encoding.
  AnswerMemory build_weighed_memory(Query& query, const std::vector<RetrievedChunk>& chunks,
                                    const AskOptions& options, AskTimings& timings,
                                    std::shared_lock<std::shared_mutex>& lock) const;
  // Generates over a built memory (no lock needed): the rest of answer().
  // `answer` holds the mode and the memory timings; `start` is answer()'s.
  void decode_answer(const AnswerMemory& memory, const std::vector<RetrievedChunk>& chunks,
                     const AskOptions& options, const PieceCallback& on_piece,
                     std::chrono::steady_clock::time_point start, Answer& answer) const;

  std::unique_ptr<IndexFolder> folder_;
  T5Decoder decoder_;
  Retriever retriever_;
  MemoryBuilder memories_;
  std::unique_ptr<DecodeBatcher> batcher_;  // set by batch_decoding; after decoder_, stops first
  std::mutex write_mutex_;                  // one writer at a time
  std::unique_ptr<WriteLock> held_lock_;    // set by hold_write_lock
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
  std::unique_lock<std::shared_mutex> lock_for_writing() const;
  // The folder's WriteLock for one write call, unless hold_write_lock holds
  // it already (call with write_mutex_ held).
  void lock_folder(std::optional<WriteLock>& lock) const;
};

}  // namespace kvrag
