#include "decoder/decoder_weights.h"

#include <string>

namespace kvrag {

DecoderWeights load_decoder_weights(const T5WeightLoader& load) {
  const T5Config& config = load.config();
  const int64_t inner = config.inner_dim();
  DecoderWeights w;
  if (!config.tie_word_embeddings) {
    w.lm_head = load.weight("lm_head.weight", config.vocab_size, config.d_model);
  }
  w.relative_bias =
      load.matrix("decoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight",
                  config.relative_attention_num_buckets, config.num_heads);
  for (int64_t i = 0; i < config.num_decoder_layers; ++i) {
    const std::string block = "decoder.block." + std::to_string(i);
    const std::string cross = block + ".layer.1.EncDecAttention";
    DecoderBlockWeights b;
    b.self_norm = load.vector(block + ".layer.0.layer_norm.weight", config.d_model);
    b.self = load.self_attention(block + ".layer.0.SelfAttention");
    b.cross_norm = load.vector(block + ".layer.1.layer_norm.weight", config.d_model);
    b.cross_q = load.weight(cross + ".q.weight", inner, config.d_model);
    b.cross_o = load.weight(cross + ".o.weight", config.d_model, inner);
    b.ffn_norm = load.vector(block + ".layer.2.layer_norm.weight", config.d_model);
    b.ffn = load.feed_forward(block + ".layer.2.DenseReluDense");
    w.blocks.push_back(std::move(b));
  }
  w.final_norm = load.vector("decoder.final_layer_norm.weight", config.d_model);
  return w;
}

}  // namespace kvrag
