// Random-weight T5 model folders for the benchmark's model-size sweep:
// RagPipeline opens a model by folder, so the random model of a real shape
// is written out as config.json + model.safetensors, with a SentencePiece
// vocabulary copied in so that text can be indexed and asked.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "encoder/t5_config.h"

namespace kvrag::bench {

// T5 v1.0 configs (ReLU FFN, tied embeddings, vocab 32128: T5Config's
// defaults) of the shapes below; the microbenchmarks time these.
// Error(kInvalidArgument) naming the known shapes for any other name.
T5Config t5_shape_config(const std::string& name);

// Flan-T5 style configs (gated GELU, untied LM head, vocab 32128) of the
// shapes the sweep names: "t5-small" (d_model 512, 8 heads × d_kv 64, d_ff
// 2048, 6 + 6 layers) and "t5-base" (768, 12 × 64, 3072, 12 + 12).
// Error(kInvalidArgument) naming the known shapes for any other name.
T5Config random_shape_config(const std::string& name);
const std::vector<std::string>& random_shape_names();

// Writes the model make_random_t5_model(config, seed) builds into `dir`
// (created if needed): config.json and model.safetensors (F16, the way
// released checkpoints are often stored; the engine computes in float32),
// the tensors under their Hugging Face names, plus a copy of `spiece_path`
// as spiece.model. Its ids must be below config.vocab_size.
// Error(kNotFound) when `spiece_path` is missing, Error(kIo) when a file
// cannot be written.
void write_random_model_folder(const T5Config& config, uint64_t seed,
                               const std::string& spiece_path, const std::string& dir);

}  // namespace kvrag::bench
