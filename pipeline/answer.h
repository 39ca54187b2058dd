// What asking a question returns: the answer, its sources with their share
// of the decoder's cross-attention, and where the time went.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "pipeline/ask_options.h"
#include "retriever/retriever.h"

namespace kvrag {

struct Source {
  RetrievedChunk chunk;
  // Share of the decoder's cross-attention mass on this chunk's tokens,
  // averaged over layers, heads and generated steps. Shares of all sources
  // plus the question's sum to 1.
  double attention = 0.0;
  // The passage prior's probability that this chunk holds the answer, when
  // it weighed the decoder's memory (pipeline/passage_prior.h).
  std::optional<double> prior;
};

struct AskTimings {
  double retrieve_ms = 0.0;
  // blob store reads + blob checks (cached mode); runs alongside encode_ms when
  // the question is encoded for the memory (see MemoryBuilder::build).
  double load_kv_ms = 0.0;
  double encode_ms = 0.0;       // encoder and K/V projection work for this question
  double first_token_ms = 0.0;  // from the start of answer() to the first generated token
  double decode_ms = 0.0;       // all decoder steps
  double total_ms = 0.0;
  int64_t generated_tokens = 0;
  double tokens_per_s = 0.0;     // generated_tokens / decode time
  int64_t kv_cache_hits = 0;     // chunks served from the RAM cache
  int64_t kv_cache_misses = 0;   // chunks read from the blob store
  int64_t store_bytes_read = 0;  // bytes of memory blobs read from the blob store
  int64_t memory_tokens = 0;     // positions the decoder cross-attended to
  // Bytes of K/V one decoder step reads from the memory, each block in the
  // dtype it is kept in (cached chunks: the index's K/V dtype; else f32).
  int64_t memory_bytes = 0;
};

struct Answer {
  std::string text;
  std::vector<int32_t> ids;  // generated ids, without the start token
  Mode mode = Mode::kCached;
  std::vector<Source> sources;      // in retrieval order
  double question_attention = 0.0;  // cross-attention share on the question's own tokens
  AskTimings timings;
};

// Called with the text each new token adds (streaming).
using PieceCallback = std::function<void(const std::string& piece)>;

}  // namespace kvrag
