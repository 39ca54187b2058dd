// Continuous batching of greedy decoding across requests, as CTranslate2 and
// vLLM do it: concurrent asks share each decoder step, so the decoder's
// weights are streamed once per step for all of them instead of once per
// request, while each sequence keeps its own self-attention cache and reads
// its own cross-attention memory. Sequences join between steps and leave
// when they finish (eos, max_new_tokens, a deadline or a failed callback);
// each one's tokens are the ones greedy generate() gives it alone, up to the
// rounding of a many-row product.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <thread>
#include <vector>

#include "decoder/generation.h"

namespace kvrag {

class DecodeBatcher {
 public:
  struct Counters {
    int64_t steps = 0;      // decoder passes run
    int64_t sequences = 0;  // sequence-steps: Σ batch size over the passes
  };

  // Runs up to `max_batch` sequences per decoder pass, on a thread of its
  // own that splits each pass over `threads` (its compute_threads(),
  // whatever the process's: core/parallel.h). Error(kInvalidArgument) for
  // max_batch or threads < 1.
  DecodeBatcher(const T5Decoder& decoder, int64_t max_batch, int64_t threads);
  ~DecodeBatcher();  // finishes the sequences in flight, then stops
  DecodeBatcher(const DecodeBatcher&) = delete;
  DecodeBatcher& operator=(const DecodeBatcher&) = delete;

  // Greedy generation over `memory`, as generate() with num_beams 1, with
  // its steps shared with other callers'. Blocks until this sequence is
  // done. on_token and options.before_step run on the batcher's thread;
  // what they throw ends this sequence only and is rethrown here.
  // Error(kInvalidArgument) for options generate() refuses or num_beams > 1.
  Generation generate(const CrossMemory& memory, const GenerationOptions& options,
                      const TokenCallback& on_token);

  Counters counters() const;

 private:
  struct Sequence;

  void run();
  // One decoder pass over every active sequence; finished ones leave.
  void step(std::vector<Sequence*>& active);

  const T5Decoder& decoder_;
  const int64_t max_batch_;
  const int64_t threads_;
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<Sequence*> waiting_;
  Counters counters_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace kvrag
