#include "encoder/t5_encoder_model.h"

#include <filesystem>

#include "core/error.h"
#include "core/hash.h"
#include "core/safetensors.h"

namespace kvrag {
namespace fs = std::filesystem;

const Tokenizer& T5EncoderModel::require_tokenizer() const {
  KVRAG_CHECK(tokenizer.has_value(), kNotFound, dir,
              "/spiece.model: no such file (the model has no tokenizer; pass token ids)");
  return *tokenizer;
}

void require_model_folder(const std::string& dir) {
  // The error_code overload: a path that cannot be stat'ed (EACCES) must be
  // a kvrag::Error, not an escaping std::filesystem_error.
  std::error_code ec;
  KVRAG_CHECK(fs::is_directory(dir, ec), kNotFound, dir, ": no such model folder");
}

std::unique_ptr<SafeTensorsCheckpoint> load_encoder_side(const std::string& dir,
                                                         T5EncoderModel& model,
                                                         WeightDtype weights) {
  model.dir = dir;
  const std::string config_path = (fs::path(dir) / "config.json").string();
  model.config = load_t5_config(config_path);
  auto checkpoint = std::make_unique<SafeTensorsCheckpoint>(dir);
  model.encoder_weights = load_encoder_weights(T5WeightLoader(*checkpoint, model.config, weights));
  const std::string spiece = (fs::path(dir) / "spiece.model").string();
  std::error_code ec;
  if (fs::exists(spiece, ec)) model.tokenizer.emplace(spiece);

  uint64_t h = hash_file(config_path);
  for (const std::string& file : checkpoint->files()) h = hash_file(file, h);
  model.fingerprint = hex64(h);
  return checkpoint;
}

std::shared_ptr<const T5EncoderModel> load_t5_encoder_model(const std::string& dir) {
  require_model_folder(dir);
  auto model = std::make_shared<T5EncoderModel>();
  load_encoder_side(dir, *model, WeightDtype::kF32);
  return model;
}

}  // namespace kvrag
