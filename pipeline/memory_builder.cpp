#include "pipeline/memory_builder.h"

#include <algorithm>
#include <chrono>
#include <future>
#include <memory>
#include <optional>

#include "core/error.h"
#include "core/parallel.h"
#include "data/kv_blob.h"
#include "pipeline/document_encoder.h"
#include "pipeline/prompts.h"
#include "pipeline/questions.h"

namespace kvrag {
namespace {

using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
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
                                                       CacheGranularity granularity, Bytes blob,
                                                       int64_t chunk_id) {
  const std::string what = str_cat("memory of chunk ", chunk_id);
  const T5Config& c = model.config;
  auto memory = std::make_shared<ChunkMemory>();
  if (granularity == CacheGranularity::kHidden) {
    std::vector<Tensor> matrices = decode_kv_blob(blob, what);
    KVRAG_CHECK(matrices.size() == 1 && matrices[0].cols() == c.d_model, kFormat, what, " has ",
                matrices.size(), " matrices of width ", matrices.empty() ? 0 : matrices[0].cols(),
                "; a hidden-state index stores 1 of width d_model ", c.d_model);
    memory->hidden = std::move(matrices[0]);
    return memory;
  }
  PackedMatrices packed = read_kv_blob(std::move(blob), what);
  const std::vector<PackedRows>& matrices = packed.matrices;
  const size_t expected = static_cast<size_t>(2 * c.num_decoder_layers);
  KVRAG_CHECK(matrices.size() == expected && matrices[0].cols == c.inner_dim(), kFormat, what,
              " has ", matrices.size(), " matrices of width ",
              matrices.empty() ? 0 : matrices[0].cols, "; the model needs ", expected,
              " (K and V per decoder layer) of width inner_dim ", c.inner_dim());
  memory->kv = std::move(packed);
  return memory;
}

// The part of a template before its {passages} placeholder, filled.
std::string concat_head(const PromptTemplates& prompts, const std::string& question) {
  const size_t at = prompts.concat.find("{passages}");
  KVRAG_CHECK(at != std::string::npos, kInvalidArgument, "the concat template '", prompts.concat,
              "' has no {passages} placeholder");
  return fill_prompt(prompts.concat.substr(0, at), PromptFields{question, {}, {}, {}});
}

// The error for a chunk passed to answer()/build_memory() that is no longer
// in the index.
[[noreturn]] void throw_chunk_gone(const RetrievedChunk& chunk) {
  KVRAG_THROW(kNotFound, "chunk ", chunk.chunk_id, " of document '", chunk.external_id,
              "' is no longer in the index (its document was removed or replaced since it "
              "was retrieved); retrieve again");
}

// A chunk whose memory the blob store does not hold: gone from the index
// (Error(kNotFound), throw_chunk_gone) when the metadata has no such chunk
// either; otherwise the blob was lost (a Redis key evicted, a replica that
// never got it) and the memory is encoded again from the chunk's title and
// text, as indexing encoded it, counted (IndexFolder::count_reencoded) and
// kept in the RAM cache. It is not written back: readers do not write.
std::shared_ptr<const ChunkMemory> reencoded_memory(const IndexFolder& c,
                                                    const RetrievedChunk& chunk) {
  try {
    c.metadata().chunk(chunk.chunk_id);
  } catch (const Error& e) {
    if (e.kind() != ErrorKind::kNotFound) throw;
    throw_chunk_gone(chunk);
  }
  const Tensor hidden =
      c.encoder().encode(chunk_prompt_ids(*c.model(), c.settings(), chunk.title, chunk.text));
  auto memory = decode_chunk_memory(*c.model(), c.settings().cache,
                                    encode_memory_blob(*c.model(), c.settings(), hidden.view()),
                                    chunk.chunk_id);
  c.count_reencoded();
  c.ram_cache().put(chunk.chunk_id, memory);
  return memory;
}

// The chunks' memories the RAM cache holds, in `chunks`' order, null where
// it misses. This is also the check that each chunk is still in the index:
// a removed chunk's cache entry is erased under the writer's lock and ids
// are never reused, so a hit is a current chunk.
std::vector<std::shared_ptr<const ChunkMemory>> ram_cached_memories(
    const IndexFolder& c, const std::vector<RetrievedChunk>& chunks, AskTimings& timings) {
  const auto start = Clock::now();
  std::vector<std::shared_ptr<const ChunkMemory>> loaded;
  for (const RetrievedChunk& chunk : chunks) loaded.push_back(c.ram_cache().get(chunk.chunk_id));
  const auto misses = static_cast<int64_t>(std::count(loaded.begin(), loaded.end(), nullptr));
  timings.kv_cache_hits += static_cast<int64_t>(chunks.size()) - misses;
  timings.kv_cache_misses += misses;
  timings.load_kv_ms += ms_since(start);
  return loaded;
}

bool all_found(const std::vector<std::shared_ptr<const ChunkMemory>>& loaded) {
  return std::find(loaded.begin(), loaded.end(), nullptr) == loaded.end();
}

// Fills the null entries of `loaded` (RAM cache misses) from the blob store,
// read in one pass (then cached); a miss there reads the metadata, for a
// chunk gone from the index or a blob lost. `beside_encoding`: the question
// is being encoded meanwhile on the compute threads, and a read that keeps a
// core busy is left one.
void read_missing_memories(const IndexFolder& c, const std::vector<RetrievedChunk>& chunks,
                           std::vector<std::shared_ptr<const ChunkMemory>>& loaded,
                           AskTimings& timings, bool beside_encoding) {
  const auto start = Clock::now();
  std::vector<size_t> missing;
  std::vector<int64_t> missing_ids;
  for (size_t i = 0; i < chunks.size(); ++i) {
    if (loaded[i]) continue;
    missing.push_back(i);
    missing_ids.push_back(chunks[i].chunk_id);
  }
  // Each blob is checked as it comes (get_each), while its bytes are still
  // in the CPU's caches. A chunk without one is encoded again after the
  // read, outside the store's lock.
  std::vector<size_t> without_blob;
  std::optional<CoreReservation> reserved;
  if (beside_encoding && !missing.empty() && c.blobs().reads_on_own_core()) reserved.emplace();
  c.blobs().get_each(missing_ids, [&](size_t m, std::optional<Bytes> blob) {
    if (!blob) {
      without_blob.push_back(missing[m]);
      return;
    }
    const int64_t chunk_id = chunks[missing[m]].chunk_id;
    timings.store_bytes_read += static_cast<int64_t>(blob->size());
    auto found = decode_chunk_memory(*c.model(), c.settings().cache, std::move(*blob), chunk_id);
    c.ram_cache().put(chunk_id, found);
    loaded[missing[m]] = std::move(found);
  });
  reserved.reset();  // encoding a chunk again takes every compute thread
  for (const size_t i : without_blob) loaded[i] = reencoded_memory(c, chunks[i]);
  timings.load_kv_ms += ms_since(start);
}

// Encodes the question unless retrieval already did, timed as encoding.
void encode_question(const IndexFolder& c, Query& query, AskTimings& timings,
                     const Deadline& deadline) {
  const auto start = Clock::now();
  encode_query(c.encoder(), query, deadline);
  timings.encode_ms += ms_since(start);
}

// cached: the encoded question prompt, then each chunk's stored memory.
AnswerMemory cached_memory(const IndexFolder& c, const Tensor& question_hidden,
                           const std::vector<std::shared_ptr<const ChunkMemory>>& loaded,
                           AskTimings& timings) {
  const auto start = Clock::now();
  AnswerMemory memory;
  if (c.settings().cache == CacheGranularity::kHidden) {
    std::vector<const Tensor*> parts{&question_hidden};
    for (const auto& chunk_memory : loaded) parts.push_back(&chunk_memory->hidden);
    memory.kv = CrossMemory(project_stacked(*c.model(), parts));
  } else {
    // No copy: the decoder reads each chunk's K/V where the cache keeps it.
    memory.kv.add(
        std::make_shared<const CrossKV>(project_cross_kv(*c.model(), question_hidden.view())));
    for (const auto& chunk_memory : loaded)
      memory.kv.add(blob_block(chunk_memory->kv), chunk_memory);
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
// With no chunk (BM25 matching no word of the question) the question alone,
// in the fid prompt with an empty passage: the answer then says it had no
// sources, as the other modes' do.
AnswerMemory fid_memory(const IndexFolder& c, const std::string& question,
                        const std::vector<RetrievedChunk>& chunks, AskTimings& timings,
                        const Deadline& deadline) {
  const auto start = Clock::now();
  std::vector<std::vector<int32_t>> batch;
  int64_t total = 0;
  const auto add_prompt = [&](const std::string& title, const std::string& text) {
    batch.push_back(prompt_ids(*c.model(), fill_prompt(c.settings().prompts.fid,
                                                       PromptFields{question, title, text, {}})));
    total += static_cast<int64_t>(batch.back().size());
  };
  for (const RetrievedChunk& chunk : chunks) {
    add_prompt(prompt_title(*c.model(), chunk.title), chunk.text);
  }
  if (chunks.empty()) add_prompt("", "");
  KVRAG_CHECK(total <= kMaxFidTokens, kInvalidArgument, "the ", chunks.size(),
              " fid prompts total ", total,
              " tokens, more than the limit kMaxFidTokens = ", kMaxFidTokens, "; use a smaller k");
  const std::vector<Tensor> hidden =
      c.encoder().encode_batch(batch, deadline.checker("encoding the fid passages"));
  AnswerMemory memory;
  std::vector<const Tensor*> parts;
  int64_t at = 0;
  for (const Tensor& h : hidden) {
    parts.push_back(&h);
    if (!chunks.empty()) memory.spans.emplace_back(at, at + h.rows());
    at += h.rows();
  }
  memory.kv = CrossMemory(project_stacked(*c.model(), parts));
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
AnswerMemory concat_memory(const IndexFolder& c, const std::string& question,
                           const std::vector<RetrievedChunk>& chunks, AskTimings& timings,
                           const Deadline& deadline) {
  const auto start = Clock::now();
  const PromptTemplates& prompts = c.settings().prompts;
  const Tokenizer& tokenizer = c.model()->require_tokenizer();
  const std::string head = concat_head(prompts, question);
  AnswerMemory memory;
  std::string passages;
  for (const RetrievedChunk& chunk : chunks) {
    // Tokenizing the growing prompt is quadratic in k: checked per passage.
    deadline.check("building the concat prompt");
    if (!passages.empty()) passages += ' ';
    const int64_t begin = static_cast<int64_t>(tokenizer.encode(head + passages).size());
    passages +=
        fill_prompt(prompts.concat_passage,
                    PromptFields{{}, prompt_title(*c.model(), chunk.title), chunk.text, {}});
    const int64_t end = static_cast<int64_t>(tokenizer.encode(head + passages).size());
    // Checked per passage too, so that a huge k fails before tokenizing it all.
    check_concat_tokens(end, chunks.size());
    memory.spans.emplace_back(begin, end);
  }
  const std::vector<int32_t> ids =
      prompt_ids(*c.model(), fill_prompt(prompts.concat, PromptFields{question, {}, {}, passages}));
  check_concat_tokens(static_cast<int64_t>(ids.size()), chunks.size());
  memory.kv = CrossMemory(project_cross_kv(
      *c.model(), c.encoder().encode(ids, deadline.checker("encoding the concat prompt")).view()));
  timings.encode_ms += ms_since(start);
  return memory;
}

}  // namespace

MemoryBuilder::MemoryBuilder(const IndexFolder& folder) : folder_(folder) {}

void MemoryBuilder::require_current(const std::vector<RetrievedChunk>& chunks, Mode mode) const {
  // Cached mode loads every chunk's memory, which checks it (see
  // ram_cached_memories and read_missing_memories); reading the rows here too would put k extra
  // store reads on the path the RAM cache exists to keep free of them.
  if (mode == Mode::kCached) return;
  for (const RetrievedChunk& chunk : chunks) {
    try {
      folder_.metadata().chunk(chunk.chunk_id);
    } catch (const Error& e) {
      if (e.kind() != ErrorKind::kNotFound) throw;
      throw_chunk_gone(chunk);
    }
  }
}

AnswerMemory MemoryBuilder::build(Query& query, const std::vector<RetrievedChunk>& chunks,
                                  Mode mode, AskTimings& timings, const Deadline& deadline) const {
  AnswerMemory memory;
  switch (mode) {
    case Mode::kCached: {
      std::vector<std::shared_ptr<const ChunkMemory>> loaded =
          ram_cached_memories(folder_, chunks, timings);
      if (all_found(loaded)) {
        // The RAM cache has every chunk: no store read to overlap, no thread.
        encode_question(folder_, query, timings, deadline);
      } else if (query.encoded()) {
        read_missing_memories(folder_, chunks, loaded, timings, /*beside_encoding=*/false);
      } else {
        // The store reads need no encoder: on another thread they overlap
        // the question's encoding. The two write different fields of
        // `timings`; an encoder error waits for the reads (~future) first.
        std::future<void> loading = std::async(std::launch::async, [&] {
          read_missing_memories(folder_, chunks, loaded, timings, /*beside_encoding=*/true);
        });
        encode_question(folder_, query, timings, deadline);
        loading.get();
      }
      memory = cached_memory(folder_, query.hidden, loaded, timings);
      break;
    }
    case Mode::kConcat:
      memory = concat_memory(folder_, query.text, chunks, timings, deadline);
      break;
    case Mode::kFid:
      memory = fid_memory(folder_, query.text, chunks, timings, deadline);
      break;
  }
  timings.memory_tokens = memory.kv.tokens();
  timings.memory_bytes = memory.kv.bytes();
  return memory;
}

}  // namespace kvrag
