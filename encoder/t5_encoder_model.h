// The encoder side of a T5 checkpoint folder in memory: config, the shared and
// encoder weights (EncoderWeights), the tokenizer and the checkpoint's
// fingerprint. It is what T5Encoder and project_cross_kv read; the whole
// model, with the decoder's own weights, is decoder/t5_model.h's T5Model,
// which derives from it and is what load_t5_model returns.
#pragma once

#include <optional>
#include <string>

#include "encoder/t5_config.h"
#include "encoder/t5_weights.h"
#include "encoder/tokenizer.h"

namespace kvrag {

struct T5EncoderModel {
  std::string dir;
  T5Config config;
  EncoderWeights encoder_weights;
  std::optional<Tokenizer> tokenizer;  // absent when the folder has no spiece.model
  std::string fingerprint;             // hex hash of config.json and all the weight files

  // The tokenizer, or Error(kNotFound) saying spiece.model is missing.
  const Tokenizer& require_tokenizer() const;
};

}  // namespace kvrag
