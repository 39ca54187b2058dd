#include "encoder/t5_weights.h"

#include "core/error.h"
#include "core/safetensors.h"

namespace kvrag {

Tensor stack_rows(const std::vector<Tensor>& parts) {
  Tensor out;
  for (const Tensor& part : parts) out.append_rows(part.view());
  return out;
}

bool T5WeightLoader::has(const std::string& name) const { return ckpt_.has(name); }

Tensor T5WeightLoader::matrix(const std::string& name, int64_t rows, int64_t cols) const {
  return ckpt_.load(name, {rows, cols});
}

Tensor T5WeightLoader::vector(const std::string& name, int64_t size) const {
  return ckpt_.load(name, {size});
}

WeightMatrix T5WeightLoader::weight(const std::string& name, int64_t rows, int64_t cols) const {
  const Tensor values = matrix(name, rows, cols);
  try {
    return WeightMatrix(values, weights_);
  } catch (const Error& e) {  // a value the dtype cannot hold: name the tensor
    throw Error(e.kind(), str_cat("tensor '", name, "': ", e.what()));
  }
}

WeightMatrix T5WeightLoader::stacked(const std::vector<Tensor>& parts) const {
  return WeightMatrix(stack_rows(parts), weights_);
}

SelfAttentionWeights T5WeightLoader::self_attention(const std::string& prefix) const {
  const int64_t inner = c_.inner_dim();
  SelfAttentionWeights w;
  w.qkv = stacked({matrix(prefix + ".q.weight", inner, c_.d_model),
                   matrix(prefix + ".k.weight", inner, c_.d_model),
                   matrix(prefix + ".v.weight", inner, c_.d_model)});
  w.o = weight(prefix + ".o.weight", c_.d_model, inner);
  return w;
}

FeedForwardWeights T5WeightLoader::feed_forward(const std::string& prefix) const {
  FeedForwardWeights w;
  if (c_.is_gated_act) {
    w.wi = stacked({matrix(prefix + ".wi_0.weight", c_.d_ff, c_.d_model),
                    matrix(prefix + ".wi_1.weight", c_.d_ff, c_.d_model)});
  } else {
    w.wi = weight(prefix + ".wi.weight", c_.d_ff, c_.d_model);
  }
  w.wo = weight(prefix + ".wo.weight", c_.d_model, c_.d_ff);
  return w;
}

// T5 checkpoints name the one embedding matrix "shared.weight", and some
// also or instead carry it as {encoder,decoder}.embed_tokens.weight.
WeightMatrix T5WeightLoader::embedding() const {
  for (const char* name :
       {"shared.weight", "encoder.embed_tokens.weight", "decoder.embed_tokens.weight"}) {
    if (ckpt_.has(name)) return weight(name, c_.vocab_size, c_.d_model);
  }
  KVRAG_THROW(kNotFound,
              "tensor 'shared.weight' not found in the model (nor "
              "'encoder.embed_tokens.weight' or 'decoder.embed_tokens.weight')");
}

EncoderWeights load_encoder_weights(const T5WeightLoader& load) {
  const T5Config& config = load.config();
  EncoderWeights w;
  w.shared = load.embedding();
  w.relative_bias =
      load.matrix("encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight",
                  config.relative_attention_num_buckets, config.num_heads);
  for (int64_t i = 0; i < config.num_layers; ++i) {
    const std::string block = "encoder.block." + std::to_string(i);
    EncoderBlockWeights b;
    b.self_norm = load.vector(block + ".layer.0.layer_norm.weight", config.d_model);
    b.self = load.self_attention(block + ".layer.0.SelfAttention");
    b.ffn_norm = load.vector(block + ".layer.1.layer_norm.weight", config.d_model);
    b.ffn = load.feed_forward(block + ".layer.1.DenseReluDense");
    w.blocks.push_back(std::move(b));
  }
  w.final_norm = load.vector("encoder.final_layer_norm.weight", config.d_model);
  return w;
}

// The decoder layers' EncDecAttention.k/.v project an encoder output; they
// belong to the representation the store caches, so they load with the encoder.
WeightMatrix load_cross_kv(const T5WeightLoader& load) {
  const T5Config& config = load.config();
  const int64_t inner = config.inner_dim();
  std::vector<Tensor> parts;
  for (int64_t i = 0; i < config.num_decoder_layers; ++i) {
    const std::string cross = "decoder.block." + std::to_string(i) + ".layer.1.EncDecAttention";
    parts.push_back(load.matrix(cross + ".k.weight", inner, config.d_model));
    parts.push_back(load.matrix(cross + ".v.weight", inner, config.d_model));
  }
  return load.stacked(parts);
}

}  // namespace kvrag
