#include "encoder/t5_encoder_model.h"

#include "core/error.h"

namespace kvrag {

const Tokenizer& T5EncoderModel::require_tokenizer() const {
  KVRAG_CHECK(tokenizer.has_value(), kNotFound, dir,
              "/spiece.model: no such file (the model has no tokenizer; pass token ids)");
  return *tokenizer;
}

}  // namespace kvrag
