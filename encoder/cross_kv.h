// A decoder memory as the decoder's cross-attention reads it: for every
// decoder layer, the keys and values of the memory's positions. T5
// cross-attention has no position bias and K/V are per-position projections,
// so the CrossKV of concatenated passages is the concatenation of their
// CrossKVs: the decoder reads them as blocks of one memory
// (decoder/cross_memory.h), without joining them.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "core/tensor.h"
#include "encoder/t5_encoder_model.h"

namespace kvrag {

struct CrossKV {
  std::vector<Tensor> k;  // per decoder layer: (tokens, inner_dim); head h = columns h·d_kv..
  std::vector<Tensor> v;  // per decoder layer: (tokens, inner_dim)
  // (tokens) 1 for a position to attend, 0 for padding; empty: all attended.
  std::vector<uint8_t> valid;

  int64_t tokens() const { return k.empty() ? 0 : k.front().rows(); }
  int64_t layers() const { return static_cast<int64_t>(k.size()); }
};

// Projects an encoder output (tokens, d_model) into the K/V of every decoder
// layer with one GEMM over the stacked EncDecAttention.k/.v weights.
CrossKV project_cross_kv(const T5EncoderModel& model, ConstView encoder_output);

// `kv`'s matrices in the order of a K/V blob (data/kv_blob.h): per decoder
// layer K, then V. Views: `kv` must outlive them.
std::vector<ConstView> blob_order(const CrossKV& kv);

}  // namespace kvrag
