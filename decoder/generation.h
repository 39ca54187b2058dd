// Greedy and beam-search decoding over one memory, with the semantics of
// Hugging Face transformers 4.33 generate() (see the fixtures' README).
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "decoder/t5_decoder.h"

namespace kvrag {

// How one sequence is decoded. max_new_tokens has no default here: a request's
// default and caps are the pipeline's (pipeline/ask_options.h: AskOptions,
// kDefaultMaxNewTokens), which decoder/ must not include; left at 0,
// generate() rejects it. num_beams = 1 (greedy) and the other fields are
// what transformers' generate() does unless told otherwise.
struct GenerationOptions {
  int64_t max_new_tokens = 0;  // >= 1, required
  // eos is not chosen before this many tokens (transformers' min_new_tokens:
  // its logit, or in beam search its log-probability, becomes -inf).
  int64_t min_new_tokens = 0;
  int64_t num_beams = 1;  // 1 = greedy
  float length_penalty = 1.0f;
  bool early_stopping = true;  // beam: stop once num_beams hypotheses are finished
  // Called before every decoder step when set; it may throw to stop the
  // generation (the pipeline's request deadline), and what it throws
  // propagates from generate() unchanged.
  std::function<void()> before_step = nullptr;
};

struct Generation {
  // Decoder start token, the generated tokens, then eos when one was
  // generated (or, for beam search, appended because the output was shorter
  // than 1 + max_new_tokens, as transformers does).
  std::vector<int32_t> ids;
  // Greedy: sum of the chosen tokens' log-probabilities. Beam: transformers'
  // sequences_scores, sum_logprobs / length^length_penalty.
  float score = 0.0f;
  // (memory tokens): the share of cross-attention that each memory position
  // received, averaged over layers, heads and generated steps; sums to 1.
  std::vector<float> attention;
  int64_t steps = 0;  // decoder passes run
};

// Called with each new token as greedy decoding produces it (streaming).
// Beam search calls it once per token of the final hypothesis at the end.
using TokenCallback = std::function<void(int32_t token)>;

// Decodes from the start token over `memory`. Throws Error(kInvalidArgument)
// for max_new_tokens < 1, num_beams < 1 or a memory the model cannot read.
Generation generate(const T5Decoder& decoder, const CrossMemory& memory,
                    const GenerationOptions& options, const TokenCallback& on_token = {});

}  // namespace kvrag
