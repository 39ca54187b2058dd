// The decoder's own T5 weights, loaded by their Hugging Face names
// and shape-checked with encoder/'s T5WeightLoader: decoder blocks (causal
// self-attention, the cross-attention query and output, FFN), the decoder's
// relative position bias and final norm, and the untied LM head. The token
// embedding (also the tied LM head) and the cross-attention k/v, which
// project encoder outputs, are the encoder side's (EncoderWeights).
#pragma once

#include <vector>

#include "core/tensor.h"
#include "encoder/t5_weights.h"

namespace kvrag {

struct DecoderBlockWeights {
  Tensor self_norm;  // (1, d_model) layer.0.layer_norm
  SelfAttentionWeights self;
  Tensor cross_norm;  // (1, d_model) layer.1.layer_norm
  WeightMatrix cross_q;  // (inner_dim, d_model) layer.1.EncDecAttention.q
  WeightMatrix cross_o;  // (d_model, inner_dim) layer.1.EncDecAttention.o
  Tensor ffn_norm;    // (1, d_model) layer.2.layer_norm
  FeedForwardWeights ffn;
};

struct DecoderWeights {
  Tensor relative_bias;  // (num_buckets, num_heads) decoder.block.0's relative_attention_bias
  std::vector<DecoderBlockWeights> blocks;  // num_decoder_layers
  Tensor final_norm;                        // (1, d_model) decoder.final_layer_norm
  WeightMatrix lm_head;                     // (vocab, d_model); empty when tied to shared
};

// Loads the decoder's own tensors (see DecoderWeights), matrices in the
// loader's weight dtype. Throws
// Error(kNotFound) naming a missing tensor and Error(kFormat) for a wrong shape.
DecoderWeights load_decoder_weights(const T5WeightLoader& load);

}  // namespace kvrag
