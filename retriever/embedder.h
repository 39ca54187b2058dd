// A chunk's or a question's retrieval embedding from its encoder output:
// the mean over every position (eos included) of the encoder output after
// the final layer norm, L2-normalised, so that inner product is cosine
// similarity. This is the definition the demo model was trained with
// (models/kvrag-demo/README.md, "embedding").
#pragma once

#include <vector>

#include "core/tensor.h"

namespace kvrag {

// encoder_output: (tokens, d_model), tokens >= 1, else Error(kInvalidArgument).
// Returns (d_model) with unit L2 norm; an all-zero mean, which has no
// direction, is returned as zeros (it scores 0 against every query).
std::vector<float> embed(ConstView encoder_output);

}  // namespace kvrag
