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

// One greedy sequence decoded a step at a time, so that several can share
// decoder passes (pipeline/decode_batcher.h); generate() runs one alone.
// The caller runs the decoder on next_input() over memory() and hands the
// row of logits and of cross-attention back to accept().
class GreedyDecoding {
 public:
  // Keeps references to memory, options and on_token: they must outlive it.
  GreedyDecoding(const T5Decoder& decoder, const CrossMemory& memory,
                 const GenerationOptions& options, const TokenCallback& on_token);
  bool done() const { return done_; }
  const CrossMemory& memory() const { return memory_; }
  const GenerationOptions& options() const { return options_; }
  // The last token, at the next position of this sequence's cache.
  DecoderInput next_input();
  // Chooses the next token from `logits` (vocab; eos may be masked in place
  // while fewer than min_new_tokens were generated), adds `attention` (memory
  // tokens), calls on_token; done after eos or max_new_tokens.
  void accept(float* logits, const float* attention);
  Generation finish();

 private:
  const CrossMemory& memory_;
  const GenerationOptions& options_;
  const TokenCallback& on_token_;
  int64_t vocab_;
  int32_t eos_;
  DecoderCache cache_;
  Generation g_;
  std::vector<float> mass_;
  bool done_ = false;
};

// Throws Error(kInvalidArgument) for max_new_tokens < 1, num_beams < 1 or
// min_new_tokens outside 0..max_new_tokens.
void check_generation_options(const GenerationOptions& options);

// Decodes from the start token over `memory`. Throws Error(kInvalidArgument)
// for max_new_tokens < 1, num_beams < 1 or a memory the model cannot read.
Generation generate(const T5Decoder& decoder, const CrossMemory& memory,
                    const GenerationOptions& options, const TokenCallback& on_token = {});

}  // namespace kvrag
