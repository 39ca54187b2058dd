// T5 weights in float32, loaded by their Hugging Face names and shape-checked.
// Projections that always run together are stacked at load time so one GEMM
// computes them: q/k/v of self-attention, wi_0/wi_1 of a gated FFN, and the
// cross-attention k/v of every decoder layer (see project_cross_kv).
#pragma once

#include <string>
#include <vector>

#include "core/tensor.h"
#include "encoder/t5_config.h"

namespace kvrag {

class SafeTensorsCheckpoint;

struct SelfAttentionWeights {
  Tensor qkv;  // (3 * inner_dim, d_model): rows q, then k, then v
  Tensor o;    // (d_model, inner_dim)
};

struct FeedForwardWeights {
  Tensor wi;  // (d_ff, d_model), or (2 * d_ff, d_model) gated: wi_0 rows, then wi_1
  Tensor wo;  // (d_model, d_ff)
};

struct EncoderBlockWeights {
  Tensor self_norm;  // (1, d_model) layer.0.layer_norm
  SelfAttentionWeights self;
  Tensor ffn_norm;  // (1, d_model) layer.1.layer_norm
  FeedForwardWeights ffn;
};

struct DecoderBlockWeights {
  Tensor self_norm;  // (1, d_model) layer.0.layer_norm
  SelfAttentionWeights self;
  Tensor cross_norm;  // (1, d_model) layer.1.layer_norm
  Tensor cross_q;     // (inner_dim, d_model) layer.1.EncDecAttention.q
  Tensor cross_o;     // (d_model, inner_dim) layer.1.EncDecAttention.o
  Tensor ffn_norm;    // (1, d_model) layer.2.layer_norm
  FeedForwardWeights ffn;
};

struct T5Weights {
  Tensor shared;                 // (vocab, d_model) token embedding
  Tensor lm_head;                // (vocab, d_model); empty when tied to shared
  Tensor encoder_relative_bias;  // (num_buckets, num_heads), block 0
  Tensor decoder_relative_bias;  // (num_buckets, num_heads), block 0
  std::vector<EncoderBlockWeights> encoder;
  std::vector<DecoderBlockWeights> decoder;
  Tensor encoder_final_norm;  // (1, d_model)
  Tensor decoder_final_norm;  // (1, d_model)
  // (num_decoder_layers * 2 * inner_dim, d_model): for layer l, rows
  // [2l * inner, (2l+1) * inner) are EncDecAttention.k, the next inner rows .v.
  Tensor cross_kv;
};

// Loads every tensor the config calls for. Throws Error(kNotFound) naming a
// missing tensor and Error(kFormat) for a wrong shape.
T5Weights load_t5_weights(const SafeTensorsCheckpoint& checkpoint, const T5Config& config);

}  // namespace kvrag
