// Plain sequence-to-sequence generation with no retrieval: the prompt is
// encoded and the decoder writes the output. What `kvrag generate` runs.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "decoder/generation.h"
#include "decoder/t5_model.h"

namespace kvrag {

struct TextGeneration {
  std::vector<int32_t> input_ids;   // prompt ids, ending with eos
  std::vector<int32_t> output_ids;  // generated ids, without the start token
  std::string text;                 // decoded output; empty without a tokenizer
  float score = 0.0f;
  double encode_ms = 0.0;
  double decode_ms = 0.0;
  // From the start of encoding to the first generated token (greedy emits it
  // after one decoder step; beam search only at the end).
  double first_token_ms = 0.0;
};

// Generates from `prompt` (tokenized with the model's spiece.model, eos
// appended) or, when `prompt_ids` is non-empty, from those ids as given
// (for models without a tokenizer). Throws Error(kInvalidArgument) for an
// empty prompt, Error(kNotFound) when text is given and there is no tokenizer.
TextGeneration generate_text(const std::shared_ptr<const T5Model>& model, const std::string& prompt,
                             std::vector<int32_t> prompt_ids, const GenerationOptions& options);

}  // namespace kvrag
