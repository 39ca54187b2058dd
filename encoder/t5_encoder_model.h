// The encoder side of a T5 checkpoint folder in memory: config, the shared and
// encoder weights (EncoderWeights), the tokenizer and the checkpoint's
// fingerprint. It is what T5Encoder and project_cross_kv read; the whole
// model, with the decoder's own weights, is decoder/t5_model.h's T5Model,
// which derives from it and is what load_t5_model returns.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "encoder/t5_config.h"
#include "encoder/t5_weights.h"
#include "encoder/tokenizer.h"

namespace kvrag {

class SafeTensorsCheckpoint;

struct T5EncoderModel {
  std::string dir;
  T5Config config;
  EncoderWeights encoder_weights;
  std::optional<Tokenizer> tokenizer;  // absent when the folder has no spiece.model
  std::string fingerprint;             // hex hash of config.json and all the weight files

  // The tokenizer, or Error(kNotFound) saying spiece.model is missing.
  const Tokenizer& require_tokenizer() const;
};

// Loads an encoder-only checkpoint folder, as transformers' T5EncoderModel
// saves one (config.json, model.safetensors or sharded with "shared.weight"
// and "encoder.*" tensors, optional spiece.model): the encoder of a retriever
// such as GTR-T5. cross_kv stays empty. Errors as load_t5_model's
// (decoder/t5_model.h): Error(kNotFound) or Error(kFormat) naming the file or
// tensor.
std::shared_ptr<const T5EncoderModel> load_t5_encoder_model(const std::string& dir);

// What both loaders read into `model` from the folder `dir`: dir,
// config.json, the encoder stack (load_encoder_weights, its matrices in
// `weights`), spiece.model when present, and the fingerprint over
// config.json and every checkpoint file.
// Returns the open checkpoint, from which load_t5_model goes on to read the
// decoder's weights.
std::unique_ptr<SafeTensorsCheckpoint> load_encoder_side(const std::string& dir,
                                                         T5EncoderModel& model,
                                                         WeightDtype weights);

// Error(kNotFound) "DIR: no such model folder" unless `dir` is a folder.
void require_model_folder(const std::string& dir);

}  // namespace kvrag
