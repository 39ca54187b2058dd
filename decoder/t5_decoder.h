// The T5 decoder stack: causal self-attention with a per-sequence K/V cache,
// cross-attention over a memory of K/V blocks (CrossMemory), FFN, and
// the LM head. Weights: T5Model::decoder_weights, and the shared token
// embedding (also the tied LM head) from its encoder side.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <vector>

#include "core/tensor.h"
#include "decoder/cross_memory.h"
#include "decoder/t5_model.h"

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

// One sequence of a step shared across requests: its new tokens and cache,
// and the memory it, unlike the others, cross-attends to.
struct OwnMemoryInput {
  DecoderInput input;
  const CrossMemory* memory;
};

// What a decoder pass can report besides logits.
struct DecoderOutputs {
  Tensor logits;  // (Σ tokens, vocab), rows in input order
  Tensor hidden;  // (Σ tokens, d_model) after decoder.final_layer_norm, before the tied rescale
  // (Σ tokens, memory tokens): cross-attention probabilities averaged over
  // layers and heads; each row sums to 1.
  Tensor cross_attention;
  std::vector<Tensor> cross_attention_each;  // forward_each(): per input
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

  // The same over sequences that each read their own memory (requests
  // decoded together: one pass over the weights for all of them). Row order
  // and logits as forward(); cross_attention is left empty and
  // cross_attention_each holds, per input, (its tokens, its memory's tokens).
  // Throws as forward() does for any input's memory.
  DecoderOutputs forward_each(std::span<const OwnMemoryInput> inputs) const;

  // Throws Error(kInvalidArgument) for a memory this model cannot read: an
  // empty one, or one of the wrong layer count or width.
  void check_memory(const CrossMemory& memory) const;

  // Logits (ids.size(), vocab) of one sequence decoded from an empty cache
  // with teacher forcing: row t scores the token after ids[0..t].
  DecoderOutputs teacher_forced(std::span<const int32_t> ids, const CrossMemory& memory) const;

  // Bytes of weights one decoder step reads (every decoder block, the final
  // norm and the LM head, the shared embedding when tied): with the
  // memory's K/V, what a step must stream from RAM at the least.
  int64_t step_weight_bytes() const;

  const T5Model& model() const { return *model_; }

 private:
  // Runs layer `layer`'s cross-attention: queries q (all rows) into out.
  using CrossAttend = std::function<void(int64_t layer, ConstView q, View out)>;
  // Every layer over the inputs' rows, then the final norm and the LM head;
  // fills out.hidden and out.logits.
  void run_layers(std::span<const DecoderInput> inputs, const CrossAttend& attend,
                  DecoderOutputs& out) const;

  std::shared_ptr<const T5Model> model_;
};

}  // namespace kvrag
