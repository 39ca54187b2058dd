// The pieces of a T5 block that the encoder and the decoder share: relative
// position buckets and biases, multi-head attention, the feed-forward layer
// and the token embedding.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "core/tensor.h"
#include "encoder/t5_config.h"
#include "encoder/t5_weights.h"

namespace kvrag {

// The bucket of `relative_position` = key position − query position, as
// transformers' T5Attention._relative_position_bucket computes it:
// bidirectional in the encoder, causal in the decoder.
int64_t relative_position_bucket(int64_t relative_position, bool bidirectional, int64_t num_buckets,
                                 int64_t max_distance);

// Position bias for queries at absolute positions query_begin .. query_begin
// + num_queries − 1 against keys 0 .. num_keys − 1: (num_heads, num_queries *
// num_keys), bias[h][i * num_keys + j] = table[bucket(j − (query_begin + i)), h].
// table: (num_buckets, num_heads).
Tensor position_bias(const Tensor& table, int64_t query_begin, int64_t num_queries,
                     int64_t num_keys, bool bidirectional, int64_t max_distance);

// Options of one attention call.
struct AttentionMask {
  // (num_heads, Tq * Tk) additive bias or nullptr (cross-attention has none).
  const Tensor* bias = nullptr;
  // Tk flags, 0 for a key to ignore (padding), or empty: every key counts.
  std::span<const uint8_t> key_valid;
  // When >= 0, query i may only see keys j <= i + causal_offset (decoder
  // self-attention: the query's absolute position).
  int64_t causal_offset = -1;
};

// softmax(q·kᵀ + bias + mask)·v per head, with no 1/sqrt(d_kv) scaling (T5).
// q: (Tq, inner_dim), k, v: (Tk, inner_dim), head h is columns [h·d_kv,
// (h+1)·d_kv); out: (Tq, inner_dim). When mass is non-null, (Tq, Tk): adds the
// head-averaged attention probabilities, for attributing answers to sources.
void multi_head_attention(ConstView q, ConstView k, ConstView v, int64_t num_heads,
                          const AttentionMask& mask, View out, View* mass = nullptr);

// h += FFN(LN(h)) is composed by the caller; this is FFN(x): x (n, d_model),
// out (n, d_model), written (accumulate=false) or added (accumulate=true).
void feed_forward(const FeedForwardWeights& w, const T5Config& config, ConstView x, View out,
                  bool accumulate);

// Rows of the embedding matrix for `ids` in float32 (dequantised when the
// embedding is int8): (ids.size(), d_model). Throws
// Error(kInvalidArgument) for an id outside the vocabulary.
Tensor embed_tokens(const WeightMatrix& embedding, std::span<const int32_t> ids);

}  // namespace kvrag
