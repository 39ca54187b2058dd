// The asking half of RagPipeline: retrieval (dense, BM25, hybrid), the
// decoder memory of each mode, generation, sources with attention shares and
// timings. Indexing lives in rag_pipeline.cpp.
#include <algorithm>
#include <chrono>
#include <map>
#include <mutex>
#include <shared_mutex>

#include "core/error.h"
#include "data/kv_blob.h"
#include "pipeline/kv_ram_cache.h"
#include "pipeline/prompts.h"
#include "pipeline/rag_pipeline.h"
#include "retriever/embedder.h"
#include "retriever/faiss_index.h"
#include "retriever/fusion.h"

namespace kvrag {
namespace {

using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

bool is_blank(const std::string& text) {
  return std::all_of(text.begin(), text.end(),
                     [](unsigned char c) { return c == ' ' || (c >= '\t' && c <= '\r'); });
}

// Not blank and at most kMaxQuestionTokens tokens: the question enters
// every encoder input of a request (fid: k of them).
void check_question(const T5Model& model, const std::string& question, const char* field) {
  KVRAG_CHECK(!is_blank(question), kInvalidArgument, field, " is empty");
  const int64_t tokens = static_cast<int64_t>(model.require_tokenizer().encode(question).size());
  KVRAG_CHECK(tokens <= kMaxQuestionTokens, kInvalidArgument, field, " has ", tokens,
              " tokens, more than the limit kMaxQuestionTokens = ", kMaxQuestionTokens);
}

// Encoder outputs stacked on the time axis, projected with one GEMM: the
// projection is per position, so this equals projecting each and appending.
// The stack is reserved once at its total length, each part copied once.
CrossKV project_stacked(const T5Model& model, const std::vector<const Tensor*>& parts) {
  const int64_t width = model.config.d_model;
  int64_t rows = 0;
  for (const Tensor* part : parts) rows += part->rows();
  std::vector<float> data;
  data.reserve(static_cast<size_t>(rows * width));
  for (const Tensor* part : parts) {
    if (part->rows() == 0) continue;
    KVRAG_CHECK(part->cols() == width, kInvalidArgument, "memory has width ", part->cols(),
                ", the model's d_model is ", width);
    data.insert(data.end(), part->data(), part->data() + part->size());
  }
  const Tensor stacked(rows, width, std::move(data));
  return project_cross_kv(model, stacked.view());
}

// A chunk's memory decoded from its blob, checked against the model and the
// index's granularity (a blob from another model or setting is kFormat).
std::shared_ptr<const ChunkMemory> decode_chunk_memory(const T5Model& model,
                                                       CacheGranularity granularity,
                                                       std::span<const uint8_t> blob,
                                                       int64_t chunk_id) {
  const std::string what = str_cat("memory of chunk ", chunk_id);
  std::vector<Tensor> matrices = decode_kv_blob(blob, what);
  const T5Config& c = model.config;
  auto memory = std::make_shared<ChunkMemory>();
  if (granularity == CacheGranularity::kHidden) {
    KVRAG_CHECK(matrices.size() == 1 && matrices[0].cols() == c.d_model, kFormat, what, " has ",
                matrices.size(), " matrices of width ", matrices.empty() ? 0 : matrices[0].cols(),
                "; a hidden-state index stores 1 of width d_model ", c.d_model);
    memory->hidden = std::move(matrices[0]);
    return memory;
  }
  const size_t expected = static_cast<size_t>(2 * c.num_decoder_layers);
  KVRAG_CHECK(matrices.size() == expected && matrices[0].cols() == c.inner_dim(), kFormat, what,
              " has ", matrices.size(), " matrices of width ",
              matrices.empty() ? 0 : matrices[0].cols(), "; the model needs ", expected,
              " (K and V per decoder layer) of width inner_dim ", c.inner_dim());
  for (size_t i = 0; i < matrices.size(); i += 2) {
    memory->kv.k.push_back(std::move(matrices[i]));
    memory->kv.v.push_back(std::move(matrices[i + 1]));
  }
  return memory;
}

// Sum of `attention` over [begin, end).
double mass_of(const std::vector<float>& attention, std::pair<int64_t, int64_t> span) {
  double sum = 0.0;
  for (int64_t i = span.first; i < span.second && i < static_cast<int64_t>(attention.size()); ++i) {
    sum += attention[static_cast<size_t>(i)];
  }
  return sum;
}

// The part of a template before its {passages} placeholder, filled.
std::string concat_head(const PromptTemplates& prompts, const std::string& question) {
  const size_t at = prompts.concat.find("{passages}");
  KVRAG_CHECK(at != std::string::npos, kInvalidArgument, "the concat template '", prompts.concat,
              "' has no {passages} placeholder");
  return fill_prompt(prompts.concat.substr(0, at), PromptFields{question, {}, {}, {}});
}

// What the memory builders read: the pipeline's parts, without the pipeline.
struct MemoryContext {
  const T5Model& model;
  const T5Encoder& encoder;
  const Store& store;
  KvRamCache& cache;
  const IndexSettings& settings;
};

// The error for a chunk passed to answer()/build_memory() that is no longer
// in the index.
[[noreturn]] void throw_chunk_gone(const RetrievedChunk& chunk) {
  KVRAG_THROW(kNotFound, "chunk ", chunk.chunk_id, " of document '", chunk.external_id,
              "' is no longer in the index (its document was removed or replaced since it "
              "was retrieved); retrieve again");
}

// The chunks' memories, from the RAM cache or else SQLite (then cached).
// This is also the check that each chunk is still in the index: a removed
// chunk's cache entry is erased under the writer's lock and ids are never
// reused, so a hit is a current chunk, and a miss reads the store.
std::vector<std::shared_ptr<const ChunkMemory>> load_chunk_memories(
    const MemoryContext& c, const std::vector<RetrievedChunk>& chunks, AskTimings& timings) {
  const auto start = Clock::now();
  std::vector<std::shared_ptr<const ChunkMemory>> loaded;
  for (const RetrievedChunk& chunk : chunks) {
    std::shared_ptr<const ChunkMemory> found = c.cache.get(chunk.chunk_id);
    if (found) {
      ++timings.kv_cache_hits;
    } else {
      ++timings.kv_cache_misses;
      std::vector<uint8_t> blob;
      try {
        blob = c.store.memory_blob(chunk.chunk_id);
      } catch (const Error& e) {
        if (e.kind() != ErrorKind::kNotFound) throw;
        throw_chunk_gone(chunk);
      }
      timings.store_bytes_read += static_cast<int64_t>(blob.size());
      found = decode_chunk_memory(c.model, c.settings.cache, blob, chunk.chunk_id);
      c.cache.put(chunk.chunk_id, found);
    }
    loaded.push_back(std::move(found));
  }
  timings.load_kv_ms += ms_since(start);
  return loaded;
}

// cached: the encoded question prompt, then each chunk's stored memory.
AnswerMemory cached_memory(const MemoryContext& c, const Tensor& question_hidden,
                           const std::vector<RetrievedChunk>& chunks, AskTimings& timings) {
  const std::vector<std::shared_ptr<const ChunkMemory>> loaded =
      load_chunk_memories(c, chunks, timings);
  const auto start = Clock::now();
  AnswerMemory memory;
  if (c.settings.cache == CacheGranularity::kHidden) {
    std::vector<const Tensor*> parts{&question_hidden};
    for (const auto& chunk_memory : loaded) parts.push_back(&chunk_memory->hidden);
    memory.kv = project_stacked(c.model, parts);
  } else {
    // The decoder's attention needs the K/V contiguous per layer: joined in
    // one pass, each chunk's K/V copied once into a memory allocated once.
    const CrossKV question_kv = project_cross_kv(c.model, question_hidden.view());
    std::vector<const CrossKV*> parts{&question_kv};
    for (const auto& chunk_memory : loaded) parts.push_back(&chunk_memory->kv);
    memory.kv = concat_cross_kv(parts);
  }
  timings.encode_ms += ms_since(start);
  int64_t at = question_hidden.rows();
  for (const auto& chunk_memory : loaded) {
    memory.spans.emplace_back(at, at + chunk_memory->tokens());
    at += chunk_memory->tokens();
  }
  return memory;
}

// fid: each chunk encoded with the question, the encodings concatenated.
AnswerMemory fid_memory(const MemoryContext& c, const std::string& question,
                        const std::vector<RetrievedChunk>& chunks, AskTimings& timings) {
  KVRAG_CHECK(!chunks.empty(), kInvalidArgument, "fid mode needs at least one chunk");
  const auto start = Clock::now();
  std::vector<std::vector<int32_t>> batch;
  int64_t total = 0;
  for (const RetrievedChunk& chunk : chunks) {
    batch.push_back(prompt_ids(
        c.model,
        fill_prompt(c.settings.prompts.fid,
                    PromptFields{question, prompt_title(c.model, chunk.title), chunk.text, {}})));
    total += static_cast<int64_t>(batch.back().size());
  }
  KVRAG_CHECK(total <= kMaxFidTokens, kInvalidArgument, "the ", chunks.size(),
              " fid prompts total ", total,
              " tokens, more than the limit kMaxFidTokens = ", kMaxFidTokens, "; use a smaller k");
  const std::vector<Tensor> hidden = c.encoder.encode_batch(batch);
  AnswerMemory memory;
  std::vector<const Tensor*> parts;
  int64_t at = 0;
  for (const Tensor& h : hidden) {
    parts.push_back(&h);
    memory.spans.emplace_back(at, at + h.rows());
    at += h.rows();
  }
  memory.kv = project_stacked(c.model, parts);
  timings.encode_ms += ms_since(start);
  return memory;
}

void check_concat_tokens(int64_t tokens, size_t chunks) {
  KVRAG_CHECK(tokens <= kMaxConcatTokens, kInvalidArgument, "the concat prompt of ", chunks,
              " chunks has ", tokens,
              " tokens or more, more than the limit kMaxConcatTokens = ", kMaxConcatTokens,
              "; use a smaller k or the fid or cached mode");
}

// concat: one joint prompt. A passage's positions are found by tokenizing
// the prompt up to its start and up to its end: exact when the template
// separates passages by whitespace (the default), because SentencePiece
// never makes a piece across whitespace; otherwise a boundary piece may be
// counted on either side.
AnswerMemory concat_memory(const MemoryContext& c, const std::string& question,
                           const std::vector<RetrievedChunk>& chunks, AskTimings& timings) {
  const auto start = Clock::now();
  const PromptTemplates& prompts = c.settings.prompts;
  const Tokenizer& tokenizer = c.model.require_tokenizer();
  const std::string head = concat_head(prompts, question);
  AnswerMemory memory;
  std::string passages;
  for (const RetrievedChunk& chunk : chunks) {
    if (!passages.empty()) passages += ' ';
    const int64_t begin = static_cast<int64_t>(tokenizer.encode(head + passages).size());
    passages += fill_prompt(prompts.concat_passage,
                            PromptFields{{}, prompt_title(c.model, chunk.title), chunk.text, {}});
    const int64_t end = static_cast<int64_t>(tokenizer.encode(head + passages).size());
    // Checked per passage too, so that a huge k fails before tokenizing it all.
    check_concat_tokens(end, chunks.size());
    memory.spans.emplace_back(begin, end);
  }
  const std::vector<int32_t> ids =
      prompt_ids(c.model, fill_prompt(prompts.concat, PromptFields{question, {}, {}, passages}));
  check_concat_tokens(static_cast<int64_t>(ids.size()), chunks.size());
  memory.kv = project_cross_kv(c.model, c.encoder.encode(ids).view());
  timings.encode_ms += ms_since(start);
  return memory;
}

}  // namespace

// ---------------------------------------------------------------- retrieval

Tensor RagPipeline::encode_question(const std::string& question) const {
  return encoder_.encode(prompt_ids(
      *model_, fill_prompt(settings_.prompts.question, PromptFields{question, {}, {}, {}})));
}

std::vector<RetrievedChunk> RagPipeline::retrieve(const std::string& query, int64_t k,
                                                  RetrieverKind retriever) const {
  const auto lock = lock_for_reading();
  return retrieve_encoded(query, nullptr, k, retriever);
}

std::vector<RetrievedChunk> RagPipeline::retrieve_encoded(const std::string& query,
                                                          const Tensor* question_hidden, int64_t k,
                                                          RetrieverKind retriever) const {
  check_question(*model_, query, "query");
  KVRAG_CHECK(k >= 1 && k <= kMaxK, kInvalidArgument, "k must be in 1..", kMaxK, ", got ", k);
  using Ranked = std::vector<std::pair<int64_t, double>>;
  auto dense = [&](int64_t depth) {
    Tensor encoded;
    if (!question_hidden) encoded = encode_question(query);
    const std::vector<float> embedding =
        embed((question_hidden ? *question_hidden : encoded).view());
    Ranked ranked;
    for (const ScoredId& hit : faiss_->search(embedding, depth)) {
      ranked.emplace_back(hit.id, hit.score);
    }
    return ranked;
  };
  auto bm25 = [&](int64_t depth) { return store_->search_bm25(query, depth); };
  Ranked ranked;
  switch (retriever) {
    case RetrieverKind::kDense:
      ranked = dense(k);
      break;
    case RetrieverKind::kBm25:
      ranked = bm25(k);
      break;
    case RetrieverKind::kHybrid: {
      // Deeper than k, so that BM25 can lift a dense hit from below the cut
      // (retriever/fusion.h says why and how the settings were chosen).
      const int64_t depth = hybrid_candidates(k);
      ranked = hybrid_fusion(dense(depth), bm25(depth), k);
      break;
    }
  }
  // Several chunks of one document are common: read each document once.
  std::map<int64_t, DocumentRecord> documents;
  std::vector<RetrievedChunk> chunks;
  for (const auto& [chunk_id, score] : ranked) {
    const ChunkRecord record = store_->chunk(chunk_id);
    auto doc = documents.find(record.document_id);
    if (doc == documents.end()) {
      doc = documents.emplace(record.document_id, store_->document(record.document_id)).first;
    }
    chunks.push_back({.chunk_id = chunk_id,
                      .document_id = record.document_id,
                      .external_id = doc->second.external_id,
                      .title = doc->second.title,
                      .text = record.text,
                      .position = record.position,
                      .score = score});
  }
  return chunks;
}

// ---------------------------------------------------------------- memories

AnswerMemory RagPipeline::build_memory(const std::string& question,
                                       const std::vector<RetrievedChunk>& chunks, Mode mode,
                                       AskTimings& timings) const {
  const auto lock = lock_for_reading();
  require_current(chunks, mode);
  return build_memory_encoded(question, nullptr, chunks, mode, timings);
}

void RagPipeline::require_current(const std::vector<RetrievedChunk>& chunks, Mode mode) const {
  // Cached mode loads every chunk's memory, which checks it (see
  // load_chunk_memories); reading the rows here too would put k extra SQLite
  // reads on the path the RAM cache exists to keep free of them.
  if (mode == Mode::kCached) return;
  for (const RetrievedChunk& chunk : chunks) {
    try {
      store_->chunk(chunk.chunk_id);
    } catch (const Error& e) {
      if (e.kind() != ErrorKind::kNotFound) throw;
      throw_chunk_gone(chunk);
    }
  }
}

AnswerMemory RagPipeline::build_memory_encoded(const std::string& question,
                                               const Tensor* question_hidden,
                                               const std::vector<RetrievedChunk>& chunks, Mode mode,
                                               AskTimings& timings) const {
  check_question(*model_, question, "question");
  const MemoryContext context{*model_, encoder_, *store_, *kv_cache_, settings_};
  AnswerMemory memory;
  switch (mode) {
    case Mode::kCached: {
      Tensor encoded;
      if (!question_hidden) {
        const auto start = Clock::now();
        encoded = encode_question(question);
        timings.encode_ms += ms_since(start);
        question_hidden = &encoded;
      }
      memory = cached_memory(context, *question_hidden, chunks, timings);
      break;
    }
    case Mode::kConcat:
      memory = concat_memory(context, question, chunks, timings);
      break;
    case Mode::kFid:
      memory = fid_memory(context, question, chunks, timings);
      break;
  }
  timings.memory_tokens = memory.kv.tokens();
  return memory;
}

// ---------------------------------------------------------------- answering

Answer RagPipeline::answer(const std::string& question, const std::vector<RetrievedChunk>& chunks,
                           const AskOptions& options, const PieceCallback& on_piece) const {
  const auto start = Clock::now();
  Answer answer;
  answer.mode = options.mode;
  AnswerMemory memory;
  {
    // The chunks were retrieved before this call: check they are still in
    // the index under the same lock as their memories are loaded.
    const auto lock = lock_for_reading();
    require_current(chunks, options.mode);
    memory = build_memory_encoded(question, nullptr, chunks, options.mode, answer.timings);
  }
  decode_answer(memory, chunks, options, on_piece, start, answer);
  return answer;
}

void RagPipeline::decode_answer(const AnswerMemory& memory,
                                const std::vector<RetrievedChunk>& chunks,
                                const AskOptions& options, const PieceCallback& on_piece,
                                Clock::time_point start, Answer& answer) const {
  const Tokenizer& tokenizer = model_->require_tokenizer();
  const int32_t eos = model_->config.eos_token_id;
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
  const Generation generation = generate(decoder_, memory.kv, options.generation, on_token);
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
    answer.sources.push_back({.chunk = chunks[i], .attention = share});
    on_sources += share;
  }
  // The rest of the mass: positions in no span (the question's own tokens).
  answer.question_attention =
      std::max(0.0, mass_of(generation.attention, {0, memory.kv.tokens()}) - on_sources);
  t.total_ms = ms_since(start);
}

Answer RagPipeline::ask(const std::string& question, const AskOptions& options,
                        const PieceCallback& on_piece) const {
  const auto start = Clock::now();
  check_question(*model_, question, "question");
  Answer answer;
  answer.mode = options.mode;
  std::vector<RetrievedChunk> chunks;
  AnswerMemory memory;
  double retrieve_ms = 0.0;
  Clock::time_point answer_start;
  {
    // Retrieval and memory load see one committed state: a writer cannot
    // remove a retrieved chunk before its memory is loaded.
    const auto lock = lock_for_reading();
    // Dense retrieval embeds the encoded question prompt, and cached mode's
    // memory starts with that same encoding: encode it once for both. Its
    // time then counts in retrieve_ms (as dense retrieval's always did), not
    // encode_ms.
    const bool shared = options.mode == Mode::kCached && options.retriever != RetrieverKind::kBm25;
    Tensor encoded;
    if (shared) encoded = encode_question(question);
    const Tensor* question_hidden = shared ? &encoded : nullptr;
    chunks = retrieve_encoded(question, question_hidden, options.k, options.retriever);
    retrieve_ms = ms_since(start);
    answer_start = Clock::now();
    memory = build_memory_encoded(question, question_hidden, chunks, options.mode, answer.timings);
  }
  decode_answer(memory, chunks, options, on_piece, answer_start, answer);
  answer.timings.retrieve_ms = retrieve_ms;
  answer.timings.total_ms += retrieve_ms;  // first_token_ms stays relative to answer()
  return answer;
}

}  // namespace kvrag
