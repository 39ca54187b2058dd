// The T5 encoder stack: token ids in, final-layer-normed hidden states out.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <vector>

#include "core/tensor.h"
#include "encoder/t5_encoder_model.h"

namespace kvrag {

class T5Encoder {
 public:
  // Takes a T5Model (decoder/t5_model.h) as it is: one is a T5EncoderModel.
  explicit T5Encoder(std::shared_ptr<const T5EncoderModel> model);

  // Encoder output of one sequence: (ids.size(), d_model), after
  // encoder.final_layer_norm. Every id is attended (no padding). Throws
  // Error(kInvalidArgument) for an empty sequence or an id outside the vocabulary.
  // `between_layers`, when set, is called before every layer and may throw
  // to stop the encoding (the pipeline's request deadline); what it throws
  // propagates unchanged.
  Tensor encode(std::span<const int32_t> ids,
                const std::function<void()>& between_layers = {}) const;

  // Several sequences of unequal lengths: the projections and FFNs run over
  // all their tokens stacked in one matrix (no padding work), attention runs
  // per sequence. Result i is (batch[i].size(), d_model) and equals
  // encode(batch[i]).
  std::vector<Tensor> encode_batch(const std::vector<std::vector<int32_t>>& batch,
                                   const std::function<void()>& between_layers = {}) const;

  // Bytes of weights encoding a short sequence reads and projecting it to
  // every decoder layer's cross-attention K/V (every block, the final norm,
  // cross_kv; of the embedding only its tokens' rows, left out): what a
  // cached answer's question must stream from RAM at the least, beside the
  // first decoder step's T5Decoder::step_weight_bytes.
  int64_t question_weight_bytes() const;

  const T5EncoderModel& model() const { return *model_; }

 private:
  std::shared_ptr<const T5EncoderModel> model_;
};

}  // namespace kvrag
