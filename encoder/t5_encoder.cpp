#include "encoder/t5_encoder.h"

#include "core/error.h"
#include "core/ops.h"
#include "encoder/t5_layers.h"

namespace kvrag {

T5Encoder::T5Encoder(std::shared_ptr<const T5EncoderModel> model) : model_(std::move(model)) {}

Tensor T5Encoder::encode(std::span<const int32_t> ids,
                         const std::function<void()>& between_layers) const {
  return std::move(
      encode_batch({std::vector<int32_t>(ids.begin(), ids.end())}, between_layers).front());
}

int64_t T5Encoder::question_weight_bytes() const {
  const EncoderWeights& w = model_->encoder_weights;
  int64_t bytes = w.relative_bias.bytes() + w.final_norm.bytes() + w.cross_kv.bytes();
  for (const EncoderBlockWeights& b : w.blocks) {
    bytes += b.self_norm.bytes() + b.self.bytes() + b.ffn_norm.bytes() + b.ffn.bytes();
  }
  return bytes;
}

std::vector<Tensor> T5Encoder::encode_batch(const std::vector<std::vector<int32_t>>& batch,
                                            const std::function<void()>& between_layers) const {
  const T5Config& c = model_->config;
  const EncoderWeights& w = model_->encoder_weights;
  const int64_t inner = c.inner_dim();

  // Sequence s owns rows [begin[s], begin[s + 1]) of the stacked matrices.
  std::vector<int64_t> begin = {0};
  std::vector<int32_t> all_ids;
  for (size_t s = 0; s < batch.size(); ++s) {
    KVRAG_CHECK(!batch[s].empty(), kInvalidArgument, "encoder input ", s, " is empty");
    all_ids.insert(all_ids.end(), batch[s].begin(), batch[s].end());
    begin.push_back(static_cast<int64_t>(all_ids.size()));
  }
  Tensor h = embed_tokens(w.shared, all_ids);
  const int64_t n = h.rows();

  std::vector<Tensor> biases;  // per sequence, shared by every layer
  for (size_t s = 0; s < batch.size(); ++s) {
    const int64_t len = begin[s + 1] - begin[s];
    biases.push_back(
        position_bias(w.relative_bias, 0, len, len, true, c.relative_attention_max_distance));
  }

  Tensor normed(n, c.d_model);
  Tensor qkv(n, 3 * inner);
  Tensor attn(n, inner);
  for (const EncoderBlockWeights& block : w.blocks) {
    if (between_layers) between_layers();
    rms_norm(h.view(), block.self_norm.view(), c.layer_norm_epsilon, normed.view());
    linear(normed.view(), block.self.qkv, qkv.view());
    for (size_t s = 0; s < batch.size(); ++s) {
      const int64_t b = begin[s];
      const int64_t len = begin[s + 1] - b;
      ConstView rows = qkv.view().rows_slice(b, len);
      AttentionMask mask;
      mask.bias = &biases[s];
      multi_head_attention(rows.cols_slice(0, inner), rows.cols_slice(inner, inner),
                           rows.cols_slice(2 * inner, inner), c.num_heads, mask,
                           attn.view().rows_slice(b, len));
    }
    linear(attn.view(), block.self.o, h.view(), /*accumulate=*/true);
    rms_norm(h.view(), block.ffn_norm.view(), c.layer_norm_epsilon, normed.view());
    feed_forward(block.ffn, c, normed.view(), h.view(), /*accumulate=*/true);
  }
  rms_norm(h.view(), w.final_norm.view(), c.layer_norm_epsilon, h.view());

  std::vector<Tensor> out;
  out.reserve(batch.size());
  for (size_t s = 0; s < batch.size(); ++s) {
    Tensor seq;
    seq.append_rows(h.view().rows_slice(begin[s], begin[s + 1] - begin[s]));
    out.push_back(std::move(seq));
  }
  return out;
}

}  // namespace kvrag
