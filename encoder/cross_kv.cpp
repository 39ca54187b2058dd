#include "encoder/cross_kv.h"

#include "core/error.h"
#include "core/ops.h"

namespace kvrag {

CrossKV project_cross_kv(const T5EncoderModel& model, ConstView encoder_output) {
  const T5Config& c = model.config;
  KVRAG_CHECK(encoder_output.cols == c.d_model, kInvalidArgument, "memory has width ",
              encoder_output.cols, ", the model's d_model is ", c.d_model);
  const int64_t inner = c.inner_dim();
  const int64_t tokens = encoder_output.rows;
  Tensor all(tokens, model.encoder_weights.cross_kv.rows());
  linear(encoder_output, model.encoder_weights.cross_kv, all.view());
  CrossKV kv;
  for (int64_t l = 0; l < c.num_decoder_layers; ++l) {
    Tensor k;
    Tensor v;
    k.append_rows(all.view().cols_slice(2 * l * inner, inner));
    v.append_rows(all.view().cols_slice((2 * l + 1) * inner, inner));
    kv.k.push_back(std::move(k));
    kv.v.push_back(std::move(v));
  }
  return kv;
}

std::vector<ConstView> blob_order(const CrossKV& kv) {
  std::vector<ConstView> matrices;
  matrices.reserve(2 * kv.k.size());
  for (size_t layer = 0; layer < kv.k.size(); ++layer) {
    matrices.push_back(kv.k[layer].view());
    matrices.push_back(kv.v[layer].view());
  }
  return matrices;
}

}  // namespace kvrag
