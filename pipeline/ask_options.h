// How a question is asked, and the only copy of every default and limit of
// a request: the CLI, the HTTP server and the benchmark take their defaults
// and caps from here (as CTranslate2's TranslationOptions does), and the
// pipeline checks them where a request enters it.
#pragma once

#include <cstdint>
#include <string>

#include "decoder/generation.h"
#include "pipeline/deadline.h"
#include "retriever/retriever.h"

namespace kvrag {

enum class Mode { kCached, kConcat, kFid };
const char* mode_name(Mode mode);
Mode parse_mode(const std::string& name);  // "cached" | "concat" | "fid"

// ---------------------------------------------------------------- defaults

constexpr int64_t kDefaultK = 5;
constexpr int64_t kDefaultMaxNewTokens = 32;
constexpr int64_t kDefaultBeams = 1;  // greedy
constexpr Mode kDefaultMode = Mode::kCached;
// The time a request to `kvrag serve` may take from its arrival (queueing
// included) before it is answered 504; `--request-timeout-s` overrides it,
// a request's own `timeout_ms` may ask for less or more (up to kMaxTimeoutMs).
constexpr int64_t kDefaultRequestTimeoutS = 30;
// Greedy asks `kvrag serve` decodes in one decoder pass (--decode-batch): a
// decode step streams the decoder's weights once for all of them. Its answer
// workers default to at least this many, so that this many asks can be
// decoding at once.
constexpr int64_t kDefaultDecodeBatch = 8;
// Batching pays where a decoder step streams its weights from RAM; weights
// that stay in the CPU's caches (the 8 MB demo model) gain nothing from it
// and lose the parallel decoding of separate workers (measured: README,
// "Batched decoding across requests").
constexpr int64_t kBatchDecodingMinStepBytes = int64_t{64} << 20;
// Hybrid, because it holds on text the embedder was not trained for: over
// SQuAD and Debian man pages dense finds the right document in the top 5 for
// 20 % of questions, BM25 and hybrid for 80-87 %; on the sample corpus hybrid
// is also the best (README, "Retrieval").
constexpr RetrieverKind kDefaultRetriever = RetrieverKind::kHybrid;
// The passage prior (pipeline/passage_prior.h): each retrieved chunk weighed
// in the reader's cross-attention by the retriever's probability that it
// holds the answer, for a reader whose config.json declares the temperature
// its own embeddings were trained with (kvrag_retrieval_temperature; the demo
// model does) and an index without a separate embedder. On by default: with
// it the demo reader reads the chunk about the question's entity instead of
// the same fact of a neighbour (README, "The demo model").
constexpr bool kDefaultPassagePrior = true;

// ---------------------------------------------------------------- limits

constexpr int64_t kMaxK = 100;
constexpr int64_t kMaxDecodeBatch = 256;
// Decoder work of one request: new tokens and beams (each beam is a row of
// every decoder step). The server once capped these at 512 and 16, the CLI
// at 4,096 and 64; one pair now holds for every caller.
constexpr int64_t kMaxNewTokens = 512;
constexpr int64_t kMaxBeams = 16;

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

// Sizes of what a client sends over HTTP, in UTF-8 bytes, checked by the
// server before any tokenizing.
constexpr int64_t kMaxQuestionBytes = 4096;  // question and search query
constexpr int64_t kMaxTitleBytes = 1024;     // document title: prefixed to every chunk's prompt
constexpr int64_t kMaxIdBytes = 256;         // document id: appears in URLs and every response

// A request's own time limit (timeout_ms) is 1..kMaxTimeoutMs.
constexpr int64_t kMaxTimeoutMs = 600'000;
// Documents in one POST /v1/documents (more: 413). One request is written in
// batches of kDocumentsPerCommit with the write lock released between them,
// so asks interleave; a bigger ingestion is several requests. At the demo
// model's ~15 ms per document a full request takes seconds, not minutes.
constexpr int64_t kMaxDocumentsPerRequest = 1000;
constexpr int64_t kDocumentsPerCommit = 16;

// ---------------------------------------------------------------- options

struct AskOptions {
  int64_t k = kDefaultK;  // 1..kMaxK
  Mode mode = kDefaultMode;
  RetrieverKind retriever = kDefaultRetriever;
  bool passage_prior = kDefaultPassagePrior;
  // max_new_tokens 1..kMaxNewTokens, num_beams 1..kMaxBeams.
  GenerationOptions generation{.max_new_tokens = kDefaultMaxNewTokens, .num_beams = kDefaultBeams};
  // When the answer must be done; none by default (the CLI, the benchmark).
  // The pipeline fills generation.before_step from it itself.
  Deadline deadline;
};

// Error(kInvalidArgument) naming the option for k outside 1..kMaxK,
// max_new_tokens outside 1..kMaxNewTokens or num_beams outside 1..kMaxBeams.
void check_k(int64_t k);
void check_generation(const GenerationOptions& generation);
// --decode-batch's default for a decoder whose step reads `step_weight_bytes`
// (T5Decoder::step_weight_bytes): kDefaultDecodeBatch from
// kBatchDecodingMinStepBytes up, 1 (each ask alone) below.
int64_t default_decode_batch(int64_t step_weight_bytes);

}  // namespace kvrag
