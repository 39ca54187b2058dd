// RagPipeline: the locks around the index folder, the retriever, the memory
// builder and the decoder, and what turns a generation into an Answer.
#include "pipeline/rag_pipeline.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <span>
#include <string_view>
#include <unordered_set>

#include "core/error.h"
#include "data/text_normalization.h"
#include "decoder/generation.h"
#include "pipeline/passage_prior.h"
#include "pipeline/questions.h"
#include "pipeline/write_lock.h"

namespace kvrag {
namespace {

using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

double seconds_since(Clock::time_point start) { return ms_since(start) / 1000.0; }

// `doc` as it is stored: its text normalised, so that documents read from
// files, posted over HTTP or passed in by a library caller are stored alike.
Document normalized(const Document& doc) {
  Document out = doc;
  out.text = normalize_text(doc.text);
  return out;
}

void check_document(const Document& doc) {
  KVRAG_CHECK(!doc.external_id.empty(), kInvalidArgument, "a document has an empty id (source '",
              doc.source, "')");
  KVRAG_CHECK(!doc.text.empty(), kInvalidArgument, "document '", doc.external_id, "' has no text");
}

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

// Sum of `attention` over [begin, end).
double mass_of(const std::vector<float>& attention, std::pair<int64_t, int64_t> span) {
  double sum = 0.0;
  for (int64_t i = span.first; i < span.second && i < static_cast<int64_t>(attention.size()); ++i) {
    sum += attention[static_cast<size_t>(i)];
  }
  return sum;
}

}  // namespace

// ---------------------------------------------------------------- opening

std::unique_ptr<RagPipeline> RagPipeline::create(const std::string& dir,
                                                 const std::string& model_dir,
                                                 const IndexSettings& settings,
                                                 const OpenOptions& options) {
  return std::unique_ptr<RagPipeline>(
      new RagPipeline(IndexFolder::create(dir, model_dir, settings, options)));
}

std::unique_ptr<RagPipeline> RagPipeline::open(const std::string& dir, const OpenOptions& options) {
  return std::unique_ptr<RagPipeline>(new RagPipeline(IndexFolder::open(dir, options)));
}

bool RagPipeline::exists(const std::string& dir) { return IndexFolder::exists(dir); }

std::unique_ptr<RagPipeline> RagPipeline::open_or_create(const std::string& dir,
                                                         const std::string& model_dir,
                                                         const IndexSettings& settings,
                                                         const OpenOptions& options) {
  if (exists(dir)) {
    OpenOptions with_model = options;
    if (with_model.model_dir.empty()) with_model.model_dir = model_dir;
    if (with_model.embedder_dir.empty()) with_model.embedder_dir = settings.embedder_dir;
    return open(dir, with_model);
  }
  KVRAG_CHECK(!model_dir.empty(), kInvalidArgument, "no index in ", dir,
              " yet: give the model folder to create one");
  return create(dir, model_dir, settings, options);
}

RagPipeline::RagPipeline(std::unique_ptr<IndexFolder> folder)
    : folder_(std::move(folder)),
      decoder_(folder_->model()),
      retriever_(folder_->metadata(), folder_->vectors()),
      memories_(*folder_) {}

RagPipeline::~RagPipeline() = default;

// ---------------------------------------------------------------- writing

IndexReport RagPipeline::add_documents(const std::vector<Document>& raw_docs, int64_t batch,
                                       const ProgressCallback& progress) {
  KVRAG_CHECK(batch > 0, kInvalidArgument, "batch must be > 0, got ", batch);
  std::vector<Document> docs;
  docs.reserve(raw_docs.size());
  for (const Document& doc : raw_docs) {
    docs.push_back(normalized(doc));
    check_document(docs.back());
  }
  const std::vector<const Document*> kept = last_of_each_id(docs);
  // Before any batch is written: a call refused part-way leaves earlier
  // batches committed.
  for (const Document* doc : kept) folder_->check_chunkable(*doc);
  std::lock_guard<std::mutex> lock(write_mutex_);
  std::optional<WriteLock> folder_lock;
  lock_folder(folder_lock);
  const auto start = Clock::now();
  IndexReport report;
  IndexProgress state;
  state.documents_total = static_cast<int64_t>(kept.size());

  for (size_t begin = 0; begin < kept.size(); begin += static_cast<size_t>(batch)) {
    const size_t end = std::min(kept.size(), begin + static_cast<size_t>(batch));
    std::vector<BatchDocument> items =
        folder_->prepare(std::span(kept).subspan(begin, end - begin), report.chunks_reused);
    {
      // Readers wait only for the commit and the FAISS/cache update, never
      // for the encoding done in prepare.
      const auto state_lock = lock_for_writing();
      folder_->commit(items, report);
    }
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
  std::optional<WriteLock> folder_lock;
  lock_folder(folder_lock);
  const auto state_lock = lock_for_writing();
  return folder_->remove(external_id);
}

void RagPipeline::hold_write_lock(const std::string& holder) {
  std::lock_guard<std::mutex> lock(write_mutex_);
  if (!held_lock_ && !folder_->shared()) {
    held_lock_ = std::make_unique<WriteLock>(folder_->dir(), holder);
  }
}

void RagPipeline::lock_folder(std::optional<WriteLock>& lock) const {
  if (!held_lock_ && !folder_->shared()) lock.emplace(folder_->dir());
}

void RagPipeline::follow_other_writers() const {
  if (!folder_->behind()) return;
  const auto lock = lock_for_writing();
  if (folder_->behind()) folder_->catch_up();
}

std::unique_lock<std::shared_mutex> RagPipeline::lock_for_writing() const {
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
  return folder_->metadata().find_document(external_id);
}

std::vector<ChunkRecord> RagPipeline::document_chunks(int64_t document_id) const {
  const auto lock = lock_for_reading();
  return folder_->metadata().document_chunks(document_id);
}

std::optional<std::pair<DocumentRecord, std::vector<ChunkRecord>>>
RagPipeline::document_with_chunks(const std::string& external_id) const {
  const auto lock = lock_for_reading();
  std::optional<DocumentRecord> doc = folder_->metadata().find_document(external_id);
  if (!doc) return std::nullopt;
  std::vector<ChunkRecord> chunks = folder_->metadata().document_chunks(doc->id);
  return std::pair(std::move(*doc), std::move(chunks));
}

void RagPipeline::require_documents() const {
  follow_other_writers();
  const auto lock = lock_for_reading();
  require_documents_locked();
}

void RagPipeline::require_documents_locked() const {
  // FAISS holds one vector per stored chunk, and its size is O(1).
  KVRAG_CHECK(folder_->vectors().size() > 0, kConflict, "the index ", folder_->dir(),
              " holds no documents: add some (kvrag index, or POST /v1/documents) before asking");
}

IndexStats RagPipeline::stats() const {
  IndexStats stats;
  {
    follow_other_writers();
    const auto lock = lock_for_reading();
    stats = folder_->stats();
  }
  if (batcher_) {
    const DecodeBatcher::Counters counters = batcher_->counters();
    stats.decode_steps = counters.steps;
    stats.decode_sequences = counters.sequences;
  }
  return stats;
}

void RagPipeline::batch_decoding(int64_t max_batch, int64_t threads) {
  KVRAG_CHECK(max_batch >= 1, kInvalidArgument, "decode batch must be at least 1, got ", max_batch);
  batcher_ =
      max_batch > 1 ? std::make_unique<DecodeBatcher>(decoder_, max_batch, threads) : nullptr;
}

Query RagPipeline::query_for(const std::string& text, const char* field) const {
  return make_query(folder_->encoder(), folder_->settings().prompts, text, field);
}

void RagPipeline::check_question(const std::string& question) const {
  query_for(question, "question");
}

std::vector<RetrievedChunk> RagPipeline::retrieve(const std::string& query_text, int64_t k,
                                                  RetrieverKind retriever) const {
  Query query = query_for(query_text, "query");
  check_k(k);
  if (retriever != RetrieverKind::kBm25) {
    embed_query(folder_->encoder(), folder_->embedder(), query);
  }
  follow_other_writers();
  const auto lock = lock_for_reading();
  return retriever_.search(query, k, retriever);
}

// ---------------------------------------------------------------- answering

AnswerMemory RagPipeline::build_memory(const std::string& question,
                                       const std::vector<RetrievedChunk>& chunks, Mode mode,
                                       AskTimings& timings) const {
  follow_other_writers();
  const auto lock = lock_for_reading();
  memories_.require_current(chunks, mode);
  Query query = query_for(question, "question");
  return memories_.build(query, chunks, mode, timings);
}

Answer RagPipeline::answer(const std::string& question, const std::vector<RetrievedChunk>& chunks,
                           const AskOptions& options, const PieceCallback& on_piece) const {
  check_generation(options.generation);
  const auto start = Clock::now();
  options.deadline.check("waiting to start");
  Answer answer;
  answer.mode = options.mode;
  AnswerMemory memory;
  {
    // The chunks were retrieved before this call: check they are still in
    // the index under the same lock as their memories are loaded.
    follow_other_writers();
    auto lock = lock_for_reading();
    options.deadline.check("waiting for the index");
    memories_.require_current(chunks, options.mode);
    Query query = query_for(question, "question");
    memory = build_weighed_memory(query, chunks, options, answer.timings, lock);
  }
  decode_answer(memory, chunks, options, on_piece, start, answer);
  return answer;
}

Answer RagPipeline::ask(const std::string& question, const AskOptions& options,
                        const PieceCallback& on_piece) const {
  const auto start = Clock::now();
  Query query = query_for(question, "question");
  check_k(options.k);
  check_generation(options.generation);
  const Deadline& deadline = options.deadline;
  deadline.check("waiting to start");
  Answer answer;
  answer.mode = options.mode;
  std::vector<RetrievedChunk> chunks;
  AnswerMemory memory;
  double retrieve_ms = 0.0;
  Clock::time_point answer_start;
  {
    // Retrieval and memory load see one committed state: a writer cannot
    // remove a retrieved chunk before its memory is loaded.
    follow_other_writers();
    auto lock = lock_for_reading();
    // Without a separate embedder, dense retrieval embeds the encoded
    // question prompt, and cached mode's memory starts with that same
    // encoding: the query carries it to both. Its time then counts in
    // retrieve_ms (as dense retrieval's always did), not encode_ms.
    // Every mode would answer from the question alone and sound as sure as
    // with sources; refuse instead (BM25 matching nothing in a non-empty
    // index is not this: that answer says it had no sources).
    require_documents_locked();
    deadline.check("waiting for the index");
    if (options.retriever != RetrieverKind::kBm25) {
      embed_query(folder_->encoder(), folder_->embedder(), query, deadline);
    }
    chunks = retriever_.search(query, options.k, options.retriever);
    retrieve_ms = ms_since(start);
    deadline.check("retrieval");
    answer_start = Clock::now();
    memory = build_weighed_memory(query, chunks, options, answer.timings, lock);
    deadline.check("building the memory");
  }
  decode_answer(memory, chunks, options, on_piece, answer_start, answer);
  answer.timings.retrieve_ms = retrieve_ms;
  answer.timings.total_ms += retrieve_ms;  // first_token_ms stays relative to answer()
  return answer;
}

AnswerMemory RagPipeline::build_weighed_memory(Query& query,
                                               const std::vector<RetrievedChunk>& chunks,
                                               const AskOptions& options, AskTimings& timings,
                                               std::shared_lock<std::shared_mutex>& lock) const {
  AnswerMemory memory;
  std::vector<float> log_weights;
  if (options.mode == Mode::kCached) {
    // Loading the memories first: a chunk removed since retrieval is then
    // named as such, before its embedding is looked for.
    memory = memories_.build(query, chunks, options.mode, timings, options.deadline);
    log_weights = passage_weights(query, chunks, options);
  } else {
    log_weights = passage_weights(query, chunks, options);
    lock.unlock();
    memory = memories_.build(query, chunks, options.mode, timings, options.deadline);
  }
  if (!log_weights.empty()) {
    memory.kv.set_bias(passage_bias(memory.kv.tokens(), memory.spans, log_weights));
    const double k = static_cast<double>(chunks.size());
    for (const float w : log_weights) memory.prior.push_back(std::exp(w) / k);
  }
  return memory;
}

std::vector<float> RagPipeline::passage_weights(Query& query,
                                                const std::vector<RetrievedChunk>& chunks,
                                                const AskOptions& options) const {
  const float temperature = folder_->model()->config.retrieval_temperature;
  if (!options.passage_prior || temperature <= 0 || folder_->embedder() != nullptr ||
      chunks.empty()) {
    return {};
  }
  embed_query(folder_->encoder(), nullptr, query, options.deadline);
  std::vector<int64_t> ids;
  for (const RetrievedChunk& chunk : chunks) ids.push_back(chunk.chunk_id);
  const std::vector<std::vector<float>> embeddings = folder_->metadata().chunk_embeddings(ids);
  std::vector<double> similarities;
  for (size_t i = 0; i < chunks.size(); ++i) {
    KVRAG_CHECK(embeddings[i].size() == query.embedding.size(), kFormat, "chunk ", ids[i],
                " has an embedding of ", embeddings[i].size(), " dimensions, the question's has ",
                query.embedding.size());
    similarities.push_back(std::inner_product(query.embedding.begin(), query.embedding.end(),
                                              embeddings[i].begin(), 0.0));
  }
  return passage_log_weights(similarities, temperature);
}

void RagPipeline::decode_answer(const AnswerMemory& memory,
                                const std::vector<RetrievedChunk>& chunks,
                                const AskOptions& options, const PieceCallback& on_piece,
                                Clock::time_point start, Answer& answer) const {
  const T5Model& model = *folder_->model();
  const Tokenizer& tokenizer = model.require_tokenizer();
  const int32_t eos = model.config.eos_token_id;
  std::vector<int32_t> streamed;
  bool first = true;
  auto on_token = [&](int32_t token) {
    if (first) {
      answer.timings.first_token_ms = ms_since(start);
      first = false;
    }
    if (on_piece && token != eos) on_piece(tokenizer.piece_text(streamed, token));
    streamed.push_back(token);
  };
  const auto decode_start = Clock::now();
  GenerationOptions generation_options = options.generation;
  if (!generation_options.before_step) {
    generation_options.before_step = options.deadline.checker("decoding");
  }
  const Generation generation = batcher_ && generation_options.num_beams == 1
                                    ? batcher_->generate(memory.kv, generation_options, on_token)
                                    : generate(decoder_, memory.kv, generation_options, on_token);
  AskTimings& t = answer.timings;
  t.decode_ms = ms_since(decode_start);

  answer.ids.assign(generation.ids.begin() + 1, generation.ids.end());
  answer.text = tokenizer.decode(answer.ids);
  t.generated_tokens = static_cast<int64_t>(answer.ids.size());
  t.tokens_per_s =
      t.decode_ms > 0 ? 1000.0 * static_cast<double>(t.generated_tokens) / t.decode_ms : 0.0;

  double on_sources = 0.0;
  for (size_t i = 0; i < chunks.size(); ++i) {
    const double share = mass_of(generation.attention, memory.spans[i]);
    answer.sources.push_back(
        {.chunk = chunks[i],
         .attention = share,
         .prior = memory.prior.empty() ? std::nullopt : std::optional(memory.prior[i])});
    on_sources += share;
  }
  // The rest of the mass: positions in no span (the question's own tokens).
  answer.question_attention =
      std::max(0.0, mass_of(generation.attention, {0, memory.kv.tokens()}) - on_sources);
  t.total_ms = ms_since(start);
}

}  // namespace kvrag
