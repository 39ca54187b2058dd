#include "retriever/embedder.h"

#include <cmath>

#include "core/error.h"

namespace kvrag {

std::vector<float> embed(ConstView encoder_output) {
  // The mean's 1/rows factor cancels in the normalisation.
  return l2_normalized(column_sums(encoder_output));
}

std::vector<double> column_sums(ConstView x) {
  KVRAG_CHECK(x.rows > 0 && x.cols > 0, kInvalidArgument, "embed: encoder output of shape [",
              x.rows, ", ", x.cols, "] has no positions to pool");
  std::vector<double> sum(static_cast<size_t>(x.cols), 0.0);
  for (int64_t i = 0; i < x.rows; ++i) {
    const float* row = x.row(i);
    for (int64_t j = 0; j < x.cols; ++j) sum[j] += row[j];
  }
  return sum;
}

std::vector<float> l2_normalized(const std::vector<double>& v) {
  double norm_sq = 0.0;
  for (const double s : v) norm_sq += s * s;
  std::vector<float> out(v.size(), 0.0f);
  if (norm_sq == 0.0) return out;
  const double inv_norm = 1.0 / std::sqrt(norm_sq);
  for (size_t j = 0; j < v.size(); ++j) out[j] = static_cast<float>(v[j] * inv_norm);
  return out;
}

}  // namespace kvrag
