// A question or search query as retrieval and the memory builder read it.
// The pipeline checks it once where a request enters (pipeline/questions.h)
// and passes it down, so that nothing below checks or tokenizes it again.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace kvrag {

struct Query {
  std::string text;                 // as asked: not blank, within kMaxQuestionTokens
  std::vector<int32_t> prompt_ids;  // the question prompt tokenized, eos appended
  // (prompt tokens, d_model): the encoder output of prompt_ids, or empty
  // until a step that needs it (dense retrieval, cached mode) encodes it.
  Tensor hidden;
  // (embedding dim), unit norm: the query's retrieval embedding, or empty
  // until dense retrieval needs it (pipeline/questions.h's embed_query).
  std::vector<float> embedding;

  bool encoded() const { return hidden.rows() > 0; }
};

}  // namespace kvrag
