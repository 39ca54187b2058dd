// The T5 decoder stack: causal self-attention with a per-sequence K/V cache,
// cross-attention over a memory of K/V blocks (CrossMemory), FFN, and
// the LM head. Weights: T5Model::decoder_weights, and the shared token
// embedding (also the tied LM head) from its encoder side.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "core/tensor.h"
#include "decoder/t5_model.h"
#include "decoder/cross_memory.h"

namespace kvrag {

// One decoded sequence's self-attention keys and values.
struct DecoderCache {
  std::vector<Tensor> k;  // per decoder layer: (length, inner_dim)
  std::vector<Tensor> v;  // per decoder layer: (length, inner_dim)

  int64_t length() const { return k.empty() ? 0 : k.front().rows(); }
  bool layers_match(int64_t layers) const {
    return static_cast<int64_t>(k.size()) == layers && static_cast<int64_t>(v.size()) == layers;
  }
};

// New tokens of one sequence and the cache they extend.
struct DecoderInput {
  std::span<const int32_t> tokens;  // next tokens, at positions cache->length() onwards
  DecoderCache* cache;              // grows by tokens.size()
};

// What a decoder pass can report besides logits.
struct DecoderOutputs {
  Tensor logits;  // (Σ tokens, vocab), rows in input order
  Tensor hidden;  // (Σ tokens, d_model) after decoder.final_layer_norm, before the tied rescale
  // (Σ tokens, memory tokens): cross-attention probabilities averaged over
  // layers and heads; each row sums to 1.
  Tensor cross_attention;
};

class T5Decoder {
 public:
  explicit T5Decoder(std::shared_ptr<const T5Model> model);

  // An empty cache with one (0, inner_dim) tensor per layer.
  DecoderCache new_cache() const;

  // Runs the new tokens of several sequences that share `memory` (the beams
  // of one question, or one sequence teacher-forced) through every layer.
  // Linear layers and cross-attention run over all rows at once; causal
  // self-attention runs per sequence over its own cache. Throws
  // Error(kInvalidArgument) for a memory of the wrong layer count or width,
  // or an id outside the vocabulary.
  DecoderOutputs forward(std::span<const DecoderInput> inputs, const CrossMemory& memory) const;

  // Logits (ids.size(), vocab) of one sequence decoded from an empty cache
  // with teacher forcing: row t scores the token after ids[0..t].
  DecoderOutputs teacher_forced(std::span<const int32_t> ids, const CrossMemory& memory) const;

  // Bytes of weights one decoder step reads (every decoder block, the final
  // norm and the LM head, the shared embedding when tied): with the
  // memory's K/V, what a step must stream from RAM at the least.
  int64_t step_weight_bytes() const;

  const T5Model& model() const { return *model_; }

 private:
  std::shared_ptr<const T5Model> model_;
};

}  // namespace kvrag
