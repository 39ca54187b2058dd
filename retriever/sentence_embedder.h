// A separate retrieval model: a T5-encoder retriever in the
// sentence-transformers layout (GTR-T5, sentence-T5; retriever/embedder_layout.h).
// An index built with `kvrag index --embedder DIR` embeds its chunks and
// questions with it instead of the reader's mean-pooled encoder
// (retriever/embedder.h). The embedding of a text is what
// sentence-transformers computes:
//
//   ids       = SentencePiece(text) cut to max_seq_length - 1 tokens, then eos
//               (no prompt prefix: the text as it is)
//   pooled    = the mean of the encoder output over the positions (d_model)
//   embedding = L2-normalise(linear.weight · pooled + linear.bias)   (dim)
//
// without the Dense step when the folder has no Dense module.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "encoder/t5_encoder.h"
#include "encoder/tokenizer.h"

namespace kvrag {

class SentenceEmbedder {
 public:
  // Loads the folder `dir`. Throws read_embedder_layout's errors for its
  // JSON files, load_t5_encoder_model's for the encoder (Error(kNotFound)
  // naming a missing config.json, model.safetensors or tensor), and
  // Error(kNotFound) naming spiece.model when the encoder folder has none;
  // Error(kFormat) when Pooling's word_embedding_dimension or Dense's
  // in_features differs from the encoder's d_model, and, naming the tensor
  // and file, for a linear.weight not of shape [out_features, in_features],
  // a linear.bias not [out_features], or a NaN or Inf weight.
  static std::shared_ptr<const SentenceEmbedder> load(const std::string& dir);

  const std::string& dir() const { return dir_; }
  // Hex hash of every file it reads: the JSON files, the encoder's config
  // and weights, spiece.model and the Dense weights.
  const std::string& fingerprint() const { return fingerprint_; }
  // The embedding dimension: Dense out_features, d_model without Dense.
  int64_t dim() const { return dim_; }
  int64_t max_seq_length() const { return max_seq_length_; }
  const T5EncoderModel& encoder_model() const { return encoder_.model(); }

  // The encoder input of `text` (see the file comment); never empty.
  std::vector<int32_t> input_ids(const std::string& text) const;
  // The unit-norm embedding (dim) of one input. `between_layers`, when set,
  // is called before every encoder layer and may throw to stop (a deadline).
  std::vector<float> embed(const std::vector<int32_t>& ids,
                           const std::function<void()>& between_layers = {}) const;
  // embed() of each input, the encoder running over them together
  // (T5Encoder::encode_batch).
  std::vector<std::vector<float>> embed_batch(const std::vector<std::vector<int32_t>>& batch) const;

 private:
  SentenceEmbedder(std::shared_ptr<const T5EncoderModel> encoder, const std::string& dir);
  // pooled -> Dense -> L2 normalisation, from one input's encoder output.
  std::vector<float> head(ConstView encoder_output) const;

  std::string dir_;
  std::string fingerprint_;
  T5Encoder encoder_;
  int64_t max_seq_length_ = 0;
  int64_t dim_ = 0;
  Tensor dense_weight_;  // (dim, d_model) 2_Dense linear.weight; empty without Dense
  Tensor dense_bias_;    // (1, dim) 2_Dense linear.bias; empty without one
};

}  // namespace kvrag
