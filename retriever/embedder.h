// A chunk's or a question's retrieval embedding from its encoder output:
// the mean over every position (eos included) of the encoder output after
// the final layer norm, L2-normalised, so that inner product is cosine
// similarity. This is the definition the demo model was trained with
// (models/kvrag-demo/README.md, "embedding"), and the embedding of an index
// built without a separate embedder (retriever/sentence_embedder.h).
#pragma once

#include <vector>

#include "core/tensor.h"

namespace kvrag {

// encoder_output: (tokens, d_model), tokens >= 1, else Error(kInvalidArgument).
// Returns (d_model) with unit L2 norm; an all-zero mean, which has no
// direction, is returned as zeros (it scores 0 against every query).
std::vector<float> embed(ConstView encoder_output);

// The column sums of `x`: (cols), accumulated in double (the sums run over
// hundreds of positions). Error(kInvalidArgument) when x has no rows or columns.
std::vector<double> column_sums(ConstView x);

// `v` divided by its L2 norm, as float; all zeros (no direction) stay zeros.
std::vector<float> l2_normalized(const std::vector<double>& v);

}  // namespace kvrag
