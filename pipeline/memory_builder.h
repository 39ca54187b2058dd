// The memory the decoder cross-attends to for one question, in each mode:
// cached (the question prompt's K/V, then every chunk's cached K/V, from
// the RAM cache or the store), concat (one joint encoding of the question
// and the passages) and fid (each passage encoded with the question).
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

#include "decoder/cross_memory.h"
#include "pipeline/answer.h"
#include "pipeline/deadline.h"
#include "pipeline/index_folder.h"
#include "retriever/query.h"

namespace kvrag {

// The memory the decoder reads for one question in one mode, and where each
// chunk sits in it.
struct AnswerMemory {
  // Per decoder layer (memory tokens, inner_dim), in blocks: cached mode's
  // are the question's K/V then each chunk's as the RAM cache holds it.
  CrossMemory kv;
  // Per chunk, in the order given: its positions [first, second) in kv.
  // Positions in no span belong to the question alone. cached: the question
  // prompt, then each chunk's cached prompt; fid: each chunk's joint encoding
  // (question included); concat: the chunk's passage tokens in the joint prompt.
  std::vector<std::pair<int64_t, int64_t>> spans;
  // Per chunk, when the passage prior weighs kv (pipeline/passage_prior.h):
  // the retriever's probability that the chunk holds the answer. Empty
  // otherwise.
  std::vector<double> prior;
};

class MemoryBuilder {
 public:
  // Reads `folder`, which must outlive it. Takes no lock: the caller keeps
  // writers out from require_current until build returns.
  explicit MemoryBuilder(const IndexFolder& folder);

  // Error(kNotFound) naming the chunk and its document for a chunk no longer
  // in the index (removed or replaced since it was retrieved). Cached mode
  // is checked by build's memory load instead, which reads every chunk anyway.
  void require_current(const std::vector<RetrievedChunk>& chunks, Mode mode) const;

  // The memory of `mode` over `chunks`. Cached mode encodes `query` when it
  // is not encoded yet (the time counts in encode_ms) and loads the chunks'
  // memories (RAM cache first). Fills encode_ms, load_kv_ms,
  // kv_cache_hits/misses, store_bytes_read and memory_tokens of `timings`.
  // memory_bytes too. Error(kInvalidArgument) for fid with no chunks or a prompt over the caps
  // (pipeline/ask_options.h); Error(kFormat) for a stored memory that does
  // not fit the model; Error(kDeadlineExceeded) once `deadline` passes
  // (checked per passage of a concat prompt and before every encoder layer).
  AnswerMemory build(Query& query, const std::vector<RetrievedChunk>& chunks, Mode mode,
                     AskTimings& timings, const Deadline& deadline = {}) const;

 private:
  const IndexFolder& folder_;
};

}  // namespace kvrag
