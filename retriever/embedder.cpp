#include "retriever/embedder.h"

#include <cmath>

#include "core/error.h"

namespace kvrag {

std::vector<float> embed(ConstView encoder_output) {
  KVRAG_CHECK(encoder_output.rows > 0 && encoder_output.cols > 0, kInvalidArgument,
              "embed: encoder output of shape [", encoder_output.rows, ", ", encoder_output.cols,
              "] has no positions to pool");
  // Accumulate in double: the sum runs over hundreds of positions.
  std::vector<double> sum(static_cast<size_t>(encoder_output.cols), 0.0);
  for (int64_t i = 0; i < encoder_output.rows; ++i) {
    const float* row = encoder_output.row(i);
    for (int64_t j = 0; j < encoder_output.cols; ++j) sum[j] += row[j];
  }
  // The mean's 1/rows factor cancels in the normalisation.
  double norm_sq = 0.0;
  for (const double s : sum) norm_sq += s * s;
  std::vector<float> out(sum.size(), 0.0f);
  if (norm_sq == 0.0) return out;
  const double inv_norm = 1.0 / std::sqrt(norm_sq);
  for (size_t j = 0; j < sum.size(); ++j) out[j] = static_cast<float>(sum[j] * inv_norm);
  return out;
}

}  // namespace kvrag
