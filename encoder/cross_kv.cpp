#include "encoder/cross_kv.h"

#include "core/error.h"
#include "core/ops.h"

namespace kvrag {

void CrossKV::append(const CrossKV& other) {
  if (other.k.empty()) return;
  const int64_t old_tokens = tokens();
  if (k.empty()) {
    k.resize(other.k.size());
    v.resize(other.v.size());
  }
  KVRAG_CHECK(k.size() == other.k.size() && v.size() == other.v.size(), kInvalidArgument,
              "cannot join memories of ", k.size(), " and ", other.k.size(), " layers");
  for (size_t l = 0; l < k.size(); ++l) {
    k[l].append_rows(other.k[l].view());
    v[l].append_rows(other.v[l].view());
  }
  if (!valid.empty() || !other.valid.empty()) {
    valid.resize(static_cast<size_t>(old_tokens), 1);
    if (other.valid.empty()) {
      valid.resize(static_cast<size_t>(tokens()), 1);
    } else {
      valid.insert(valid.end(), other.valid.begin(), other.valid.end());
    }
  }
}

CrossKV project_cross_kv(const T5Model& model, ConstView encoder_output) {
  const T5Config& c = model.config;
  KVRAG_CHECK(encoder_output.cols == c.d_model, kInvalidArgument, "memory has width ",
              encoder_output.cols, ", the model's d_model is ", c.d_model);
  const int64_t inner = c.inner_dim();
  const int64_t tokens = encoder_output.rows;
  Tensor all(tokens, model.weights.cross_kv.rows());
  linear(encoder_output, model.weights.cross_kv.view(), all.view());
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

}  // namespace kvrag
