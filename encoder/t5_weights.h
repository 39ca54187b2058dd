// T5 weights, loaded by their Hugging Face names and shape-checked:
// the pieces both stacks share (self-attention and FFN weights, the loader
// that reads and checks a tensor) and the encoder side of a checkpoint
// (token embedding, encoder blocks, and the decoder layers' cross-attention
// k/v, which project an encoder output into the K/V that is cached). The
// decoder's own weights are decoder/decoder_weights.h.
// Projections that always run together are stacked at load time so one GEMM
// computes them: q/k/v of self-attention, wi_0/wi_1 of a gated FFN, and the
// cross-attention k/v of every decoder layer (see project_cross_kv).
// Matrices that products read (WeightMatrix) are float32 or int8, as the
// loader is asked, quantised after stacking; norms and position biases stay
// float32.
#pragma once

#include <string>
#include <vector>

#include "core/tensor.h"
#include "core/weight_matrix.h"
#include "encoder/t5_config.h"

namespace kvrag {

class SafeTensorsCheckpoint;

struct SelfAttentionWeights {
  WeightMatrix qkv;  // (3 * inner_dim, d_model): rows q, then k, then v
  WeightMatrix o;    // (d_model, inner_dim)

  int64_t bytes() const { return qkv.bytes() + o.bytes(); }
};

struct FeedForwardWeights {
  WeightMatrix wi;  // (d_ff, d_model), or (2 * d_ff, d_model) gated: wi_0 rows, then wi_1
  WeightMatrix wo;  // (d_model, d_ff)

  int64_t bytes() const { return wi.bytes() + wo.bytes(); }
};

struct EncoderBlockWeights {
  Tensor self_norm;  // (1, d_model) layer.0.layer_norm
  SelfAttentionWeights self;
  Tensor ffn_norm;  // (1, d_model) layer.1.layer_norm
  FeedForwardWeights ffn;
};

struct EncoderWeights {
  WeightMatrix shared;   // (vocab, d_model) token embedding of both stacks (and tied LM head)
  Tensor relative_bias;  // (num_buckets, num_heads) encoder.block.0's relative_attention_bias
  std::vector<EncoderBlockWeights> blocks;  // num_layers
  Tensor final_norm;                        // (1, d_model) encoder.final_layer_norm
  // (num_decoder_layers * 2 * inner_dim, d_model): for decoder layer l, rows
  // [2l * inner, (2l+1) * inner) are EncDecAttention.k, the next inner rows .v.
  // Empty in an encoder-only model (load_t5_encoder_model), which has no decoder.
  WeightMatrix cross_kv;
};

// Reads tensors by Hugging Face name from `checkpoint`, each checked against
// the shape `config` calls for; both stacks' loaders use it. Holds references:
// the checkpoint and config must outlive it. Weight matrices come out in
// `weights` (int8: quantised as each is read, so that no float32 copy of the
// model is ever whole in memory). Every read throws
// Error(kNotFound) naming a missing tensor and Error(kFormat) for a wrong shape.
class T5WeightLoader {
 public:
  T5WeightLoader(const SafeTensorsCheckpoint& checkpoint, const T5Config& config,
                 WeightDtype weights = WeightDtype::kF32)
      : ckpt_(checkpoint), c_(config), weights_(weights) {}

  const T5Config& config() const { return c_; }
  bool has(const std::string& name) const;
  Tensor matrix(const std::string& name, int64_t rows, int64_t cols) const;  // (rows, cols)
  Tensor vector(const std::string& name, int64_t size) const;                // (1, size)
  // A matrix products read, in the loader's weight dtype: (rows, cols).
  WeightMatrix weight(const std::string& name, int64_t rows, int64_t cols) const;
  // `prefix`.{q,k,v,o}.weight, q/k/v stacked.
  SelfAttentionWeights self_attention(const std::string& prefix) const;
  // `prefix`.wi (or wi_0 and wi_1 stacked, gated) and .wo.
  FeedForwardWeights feed_forward(const std::string& prefix) const;
  // The token embedding: "shared.weight", or {encoder,decoder}.embed_tokens.weight.
  WeightMatrix embedding() const;
  // `parts` stacked (stack_rows), in the loader's weight dtype.
  WeightMatrix stacked(const std::vector<Tensor>& parts) const;

 private:
  const SafeTensorsCheckpoint& ckpt_;
  const T5Config& c_;
  WeightDtype weights_;
};

// The copy of each part's rows, in order, in one (Σ rows, cols) tensor.
Tensor stack_rows(const std::vector<Tensor>& parts);

// Loads the encoder stack of the checkpoint (see EncoderWeights): every
// member but cross_kv, which load_cross_kv reads from the decoder's layers.
// Throws as T5WeightLoader's reads do.
EncoderWeights load_encoder_weights(const T5WeightLoader& load);

// EncoderWeights::cross_kv: the decoder layers' EncDecAttention.k/.v stacked,
// in the loader's weight dtype. Throws as T5WeightLoader's reads do.
WeightMatrix load_cross_kv(const T5WeightLoader& load);

}  // namespace kvrag
