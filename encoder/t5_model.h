// A T5 checkpoint folder loaded into memory: config, float32 weights and,
// when the folder has spiece.model, the tokenizer. encoder/ holds the config,
// weight loading (both stacks' tensors: one loader checks the whole
// checkpoint), the tokenizer, the layers both stacks share, the encoder
// stack and the K/V projection; the decoder stack and search are decoder/'s
// (encoder/README.md).
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "encoder/t5_config.h"
#include "encoder/t5_weights.h"
#include "encoder/tokenizer.h"

namespace kvrag {

struct T5Model {
  std::string dir;
  T5Config config;
  T5Weights weights;
  std::optional<Tokenizer> tokenizer;  // absent when the folder has no spiece.model
  std::string fingerprint;             // hex hash of config.json and the weight files

  // The tokenizer, or Error(kNotFound) saying spiece.model is missing.
  const Tokenizer& require_tokenizer() const;
};

// Loads `dir` (config.json, model.safetensors or sharded, optional
// spiece.model). Errors name the missing or malformed file or tensor.
std::shared_ptr<const T5Model> load_t5_model(const std::string& dir);

// A model of `config`'s shape with random weights (fixed seed), for speed
// benchmarks of real-size models that cannot be downloaded here.
std::shared_ptr<const T5Model> make_random_t5_model(const T5Config& config, uint64_t seed);

}  // namespace kvrag
