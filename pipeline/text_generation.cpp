#include "pipeline/text_generation.h"

#include <chrono>

#include "core/error.h"
#include "decoder/t5_decoder.h"
#include "encoder/t5_encoder.h"

namespace kvrag {
namespace {
double ms_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
      .count();
}
}  // namespace

TextGeneration generate_text(const std::shared_ptr<const T5Model>& model, const std::string& prompt,
                             std::vector<int32_t> prompt_ids, const GenerationOptions& options) {
  TextGeneration result;
  if (prompt_ids.empty()) {
    KVRAG_CHECK(!prompt.empty(), kInvalidArgument, "the prompt is empty");
    prompt_ids = model->require_tokenizer().encode(prompt);
    prompt_ids.push_back(model->config.eos_token_id);
  }
  result.input_ids = prompt_ids;

  const auto encode_start = std::chrono::steady_clock::now();
  const T5Encoder encoder(model);
  const Tensor states = encoder.encode(prompt_ids);
  const CrossMemory memory(project_cross_kv(*model, states.view()));
  result.encode_ms = ms_since(encode_start);

  const auto decode_start = std::chrono::steady_clock::now();
  const T5Decoder decoder(model);
  const Generation g = generate(decoder, memory, options, [&](int32_t) {
    if (result.first_token_ms == 0.0) result.first_token_ms = ms_since(encode_start);
  });
  result.decode_ms = ms_since(decode_start);
  result.output_ids.assign(g.ids.begin() + 1, g.ids.end());
  result.score = g.score;
  if (model->tokenizer) result.text = model->tokenizer->decode(result.output_ids);
  return result;
}

}  // namespace kvrag
