// A decoder memory as the decoder's cross-attention reads it: for every
// decoder layer, the keys and values of the memory's positions. T5
// cross-attention has no position bias and K/V are per-position projections,
// so the CrossKV of concatenated passages is the concatenation of their CrossKVs.
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
  // Appends the positions of `other` after this memory's (same layer count and
  // width). Works on an empty CrossKV. Copies this memory too: to join many
  // memories, concat_cross_kv copies each only once.
  void append(const CrossKV& other);
};

// The positions of `parts` one after another, as appending each in turn to
// an empty CrossKV gives (parts without layers are skipped; `valid` is filled
// only when some part has one), with every layer's K and V allocated once at
// the total token count and each part copied once into its rows. Pointers
// must not be null; the parts are only read. Error(kInvalidArgument) for parts
// of different layer counts or widths, or a part whose K, V and `valid` do
// not all have its token count.
CrossKV concat_cross_kv(std::span<const CrossKV* const> parts);

// Projects an encoder output (tokens, d_model) into the K/V of every decoder
// layer with one GEMM over the stacked EncDecAttention.k/.v weights.
CrossKV project_cross_kv(const T5EncoderModel& model, ConstView encoder_output);

}  // namespace kvrag
