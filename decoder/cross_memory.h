// The memory the decoder's cross-attention reads: blocks of K/V (the
// question's, then each chunk's) left where they lie, each in its stored
// dtype. T5 cross-attention has no position bias and K/V are per-position
// projections, so attending over the blocks one after another is attending
// over their concatenation; no joint copy is made.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "core/packed_rows.h"
#include "core/tensor.h"
#include "encoder/cross_kv.h"

namespace kvrag {

// One block of a memory: per decoder layer, the K and V of its positions.
struct MemoryBlock {
  std::vector<PackedRows> k;  // per decoder layer: (tokens, inner_dim); head h = columns h·d_kv..
  std::vector<PackedRows> v;  // per decoder layer: (tokens, inner_dim)
  // (tokens) 1 for a position to attend, 0 for padding; empty: all attended.
  std::span<const uint8_t> valid;

  int64_t tokens() const { return k.empty() ? 0 : k.front().rows; }
};

// A K/V blob's matrices (per decoder layer K, then V: data/kv_blob.h) as a
// block. Views: the caller keeps `kv` alive with the block (add's owner).
MemoryBlock blob_block(const PackedMatrices& kv);

class CrossMemory {
 public:
  CrossMemory() = default;
  // A memory of one f32 block: `kv`, which it keeps.
  explicit CrossMemory(CrossKV kv);

  // Appends a block after the others. `owner` keeps the bytes its views
  // point at alive for as long as this memory (or a copy) lives.
  // Error(kInvalidArgument) for K and V of different layer counts, a layer
  // whose K or V does not hold the block's token count, a mask of another
  // length, layers or width that differ from the blocks before it, or a
  // memory whose bias is set.
  void add(MemoryBlock block, std::shared_ptr<const void> owner);
  // Appends `kv` as an f32 block (views of its tensors, kept alive by it).
  void add(std::shared_ptr<const CrossKV> kv);

  std::span<const MemoryBlock> blocks() const { return blocks_; }
  int64_t tokens() const { return tokens_; }
  int64_t layers() const { return blocks_.empty() ? 0 : static_cast<int64_t>(blocks_[0].k.size()); }
  int64_t width() const { return blocks_.empty() ? 0 : blocks_[0].k[0].cols; }
  // Bytes of K and V one pass over every layer reads.
  int64_t bytes() const;

  // (tokens()) added to every head's attention logit at each memory
  // position, in every layer: a passage's log prior weight over its span
  // (pipeline/passage_prior.h). Adding log n to a block's logits weighs it as
  // n copies of it would be. Empty (the default): no bias. Error(kInvalidArgument)
  // for another length or a value that is not finite.
  void set_bias(std::vector<float> bias);
  std::span<const float> bias() const { return bias_; }

 private:
  std::vector<MemoryBlock> blocks_;
  std::vector<std::shared_ptr<const void>> owners_;
  std::vector<float> bias_;
  int64_t tokens_ = 0;
};

// softmax(q·Kᵀ + bias)·V of decoder layer `layer` per head over every block
// of `memory`, with no 1/sqrt(d_kv) scaling (T5), the memory's bias (if
// any) and the blocks' padding masked; without a bias equal, within f32
// rounding, to multi_head_attention over the blocks' concatenation.
// q: (Tq, inner_dim); out: (Tq, inner_dim), overwritten. When mass is
// non-null, (Tq, memory tokens): adds the head-averaged attention
// probabilities. `kernels` converts the stored dtypes (packed_kernels()
// unless a test picks one). Error(kInternal) for shapes that do not fit.
void cross_attention(ConstView q, const CrossMemory& memory, int64_t layer, int64_t num_heads,
                     View out, View* mass = nullptr,
                     const PackedKernels& kernels = packed_kernels());

}  // namespace kvrag
