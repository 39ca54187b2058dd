// A T5 checkpoint folder loaded into memory: the encoder side (config, shared
// and encoder weights, tokenizer, fingerprint: encoder/t5_encoder_model.h) and
// the decoder's own weights. It lives in decoder/ because it owns both
// halves and decoder/ is the one that may see encoder/; a T5Model is a
// T5EncoderModel, so T5Encoder and project_cross_kv take it as it is.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "core/weight_matrix.h"
#include "decoder/decoder_weights.h"
#include "encoder/t5_encoder_model.h"

namespace kvrag {

struct T5Model : T5EncoderModel {
  DecoderWeights decoder_weights;
};

// Loads `dir` (config.json, model.safetensors or sharded, optional
// spiece.model): every tensor the config calls for, shape-checked, the
// matrices of products in `weights` (int8: quantised per output row as they
// are read; the float32 values are freed, so that a loaded int8 model holds
// about a quarter of the bytes), norms and biases in float32. Errors name the missing or malformed
// file or tensor (Error(kNotFound), Error(kFormat)).
std::shared_ptr<const T5Model> load_t5_model(const std::string& dir,
                                             WeightDtype weights = WeightDtype::kF32);

// A model of `config`'s shape with random weights (fixed seed), for speed
// benchmarks of real-size models that cannot be downloaded here; the
// weights of products in `weights` (the same draws either way).
std::shared_ptr<const T5Model> make_random_t5_model(const T5Config& config, uint64_t seed,
                                                    WeightDtype weights = WeightDtype::kF32);

}  // namespace kvrag
