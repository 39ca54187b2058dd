// Cross-attention over a memory of K/V blocks read in place against
// multi_head_attention over the blocks gathered into one f32 memory (what
// the decoder did before): same output and attention mass within f32
// rounding, for blocks of every dtype, padding masks, several queries, and
// both kernel sets; and the memory's refusals.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <memory>
#include <vector>

#include "core/error.h"
#include "data/kv_blob.h"
#include "decoder/cross_memory.h"
#include "encoder/t5_layers.h"
#include "tests/model_files.h"
#include "tests/tensor_checks.h"

namespace kvrag {
namespace {

using testing::throws_error;

constexpr int64_t kLayers = 2;
constexpr int64_t kHeads = 3;
constexpr int64_t kWidth = kHeads * 16;

// A chunk's K/V as the RAM cache holds it: a blob of `dtype`, packed.
std::shared_ptr<const PackedMatrices> packed_block(KvDtype dtype, int64_t tokens, uint32_t seed) {
  std::vector<Tensor> values;
  for (int64_t m = 0; m < 2 * kLayers; ++m) {
    values.push_back(
        testing::random_normal_tensor(tokens, kWidth, seed + static_cast<uint32_t>(m)));
  }
  std::vector<ConstView> views;
  for (const Tensor& t : values) views.push_back(t.view());
  return std::make_shared<const PackedMatrices>(read_kv_blob(encode_kv_blob(dtype, views), "test"));
}

MemoryBlock block_of(const PackedMatrices& packed) {
  MemoryBlock block;
  for (int64_t l = 0; l < kLayers; ++l) {
    block.k.push_back(packed.matrices[2 * l]);
    block.v.push_back(packed.matrices[2 * l + 1]);
  }
  return block;
}

// The gathered reference: layer `layer`'s K (side 0) or V (side 1) of every
// block, unpacked into one f32 tensor.
Tensor gathered(const CrossMemory& memory, int64_t layer, int side) {
  Tensor joint(memory.tokens(), memory.width());
  int64_t at = 0;
  for (const MemoryBlock& block : memory.blocks()) {
    const PackedRows& rows = side == 0 ? block.k[layer] : block.v[layer];
    for (int64_t t = 0; t < rows.rows; ++t) unpack_row(rows, t, joint.row(at++));
  }
  return joint;
}

std::vector<uint8_t> gathered_valid(const CrossMemory& memory) {
  std::vector<uint8_t> valid;
  for (const MemoryBlock& block : memory.blocks()) {
    if (block.valid.empty()) {
      valid.insert(valid.end(), static_cast<size_t>(block.tokens()), 1);
    } else {
      valid.insert(valid.end(), block.valid.begin(), block.valid.end());
    }
  }
  return valid;
}

// A question block in f32 with a padded slot, then one chunk block of each dtype.
CrossMemory mixed_memory() {
  CrossKV question;
  for (int64_t l = 0; l < kLayers; ++l) {
    question.k.push_back(testing::random_normal_tensor(5, kWidth, 100 + static_cast<uint32_t>(l)));
    question.v.push_back(testing::random_normal_tensor(5, kWidth, 200 + static_cast<uint32_t>(l)));
  }
  question.valid = {1, 1, 0, 1, 1};
  CrossMemory memory(std::move(question));
  uint32_t seed = 300;
  for (const KvDtype dtype : {KvDtype::kF16, KvDtype::kInt8, KvDtype::kF32}) {
    const auto packed = packed_block(dtype, 7, seed += 10);
    memory.add(block_of(*packed), packed);
  }
  return memory;
}

TEST(CrossMemory, BlocksInPlaceEqualTheGatheredMemory) {
  const CrossMemory memory = mixed_memory();
  ASSERT_EQ(memory.tokens(), 5 + 3 * 7);
  const std::vector<uint8_t> valid = gathered_valid(memory);
  const Tensor q = testing::random_normal_tensor(4, kWidth, 9, 0.0f, 0.3f);
  const std::vector<const PackedKernels*>& kernel_sets = packed_kernel_sets();
  for (int64_t l = 0; l < kLayers; ++l) {
    const Tensor k = gathered(memory, l, 0);
    const Tensor v = gathered(memory, l, 1);
    Tensor want(4, kWidth);
    Tensor want_mass(4, memory.tokens());
    View want_mass_view = want_mass.view();
    AttentionMask mask;
    mask.key_valid = valid;
    multi_head_attention(q.view(), k.view(), v.view(), kHeads, mask, want.view(), &want_mass_view);
    for (const PackedKernels* kernels : kernel_sets) {
      Tensor got(4, kWidth);
      Tensor got_mass(4, memory.tokens());
      View got_mass_view = got_mass.view();
      cross_attention(q.view(), memory, l, kHeads, got.view(), &got_mass_view, *kernels);
      EXPECT_LT(testing::relative_error(got, want), 1e-5) << kernels->name << " layer " << l;
      EXPECT_LT(testing::relative_error(got_mass, want_mass), 1e-5) << kernels->name;
      EXPECT_EQ(got_mass.at(0, 2), 0.0f) << "the padded slot gets no attention";
    }
  }
}

TEST(CrossMemory, CountsTokensAndPackedBytes) {
  const CrossMemory memory = mixed_memory();
  EXPECT_EQ(memory.layers(), kLayers);
  EXPECT_EQ(memory.width(), kWidth);
  // Per layer K and V: f32 question and chunk, f16 chunk, int8 chunk (scale per row).
  const int64_t per_side = 5 * kWidth * 4 + 7 * kWidth * 2 + 7 * (kWidth + 4) + 7 * kWidth * 4;
  EXPECT_EQ(memory.bytes(), 2 * kLayers * per_side);
}

TEST(CrossMemory, RefusesBlocksThatDoNotFit) {
  CrossMemory memory = mixed_memory();
  const auto packed = packed_block(KvDtype::kF16, 3, 1);
  MemoryBlock short_layers = block_of(*packed);
  short_layers.k.pop_back();
  short_layers.v.pop_back();
  EXPECT_TRUE(throws_error([&] { memory.add(short_layers, packed); }, ErrorKind::kInvalidArgument,
                           {"cannot join memories of 2 and 1 layers"}));
  MemoryBlock bad_mask = block_of(*packed);
  const std::vector<uint8_t> mask{1, 0};
  bad_mask.valid = mask;
  EXPECT_TRUE(throws_error([&] { memory.add(bad_mask, packed); }, ErrorKind::kInvalidArgument,
                           {"a memory block of 3 tokens has a valid mask of 2"}));
  MemoryBlock uneven = block_of(*packed);
  uneven.v.pop_back();
  EXPECT_TRUE(throws_error([&] { memory.add(uneven, packed); }, ErrorKind::kInvalidArgument,
                           {"a memory block has 2 layers of K and 1 of V"}));
  CrossKV narrow;
  for (int64_t l = 0; l < kLayers; ++l) {
    narrow.k.emplace_back(2, 8);
    narrow.v.emplace_back(2, 8);
  }
  EXPECT_TRUE(throws_error([&] { memory.add(std::make_shared<const CrossKV>(narrow)); },
                           ErrorKind::kInvalidArgument,
                           {"cannot join memories of width 48 and 8"}));
  EXPECT_EQ(memory.tokens(), 5 + 3 * 7) << "a refused block leaves the memory as it was";
}

// Adding log 3 to a block's logits weighs it as three copies of it: the
// identity the passage prior (pipeline/passage_prior.h) rests on, checked
// against a memory that holds the block three times, for both kernel sets.
TEST(CrossMemory, ABiasOfLogNWeighsABlockAsNCopies) {
  const auto question = packed_block(KvDtype::kF32, 4, 500);
  const auto chunk = packed_block(KvDtype::kF16, 6, 600);
  CrossMemory biased;
  biased.add(block_of(*question), question);
  biased.add(block_of(*chunk), chunk);
  std::vector<float> bias(4, 0.0f);
  bias.insert(bias.end(), 6, std::log(3.0f));
  biased.set_bias(bias);
  CrossMemory copies;
  copies.add(block_of(*question), question);
  for (int copy = 0; copy < 3; ++copy) copies.add(block_of(*chunk), chunk);

  const Tensor q = testing::random_normal_tensor(2, kWidth, 7, 0.0f, 0.3f);
  const std::vector<const PackedKernels*>& kernel_sets = packed_kernel_sets();
  for (const PackedKernels* kernels : kernel_sets) {
    for (int64_t l = 0; l < kLayers; ++l) {
      Tensor got(2, kWidth), want(2, kWidth), unbiased(2, kWidth);
      Tensor got_mass(2, biased.tokens());
      Tensor want_mass(2, copies.tokens());
      View got_mass_view = got_mass.view();
      View want_mass_view = want_mass.view();
      cross_attention(q.view(), biased, l, kHeads, got.view(), &got_mass_view, *kernels);
      cross_attention(q.view(), copies, l, kHeads, want.view(), &want_mass_view, *kernels);
      EXPECT_LT(testing::relative_error(got, want), 1e-5) << kernels->name << " layer " << l;
      for (int64_t i = 0; i < 2; ++i) {
        float on_question = 0.0f, on_copies_question = 0.0f;
        for (int64_t j = 0; j < 4; ++j) {
          on_question += got_mass.at(i, j);
          on_copies_question += want_mass.at(i, j);
        }
        EXPECT_NEAR(on_question, on_copies_question, 1e-5) << kernels->name;
      }
      CrossMemory plain;
      plain.add(block_of(*question), question);
      plain.add(block_of(*chunk), chunk);
      cross_attention(q.view(), plain, l, kHeads, unbiased.view(), nullptr, *kernels);
      EXPECT_GT(testing::relative_error(unbiased, want), 1e-3) << "the bias changes the output";
    }
  }
}

TEST(CrossMemory, RefusesABiasThatDoesNotFit) {
  CrossMemory memory = mixed_memory();
  EXPECT_TRUE(throws_error([&] { memory.set_bias(std::vector<float>(3, 0.0f)); },
                           ErrorKind::kInvalidArgument,
                           {"a memory of 26 tokens was given a bias of 3"}));
  std::vector<float> bias(static_cast<size_t>(memory.tokens()), 0.0f);
  bias[7] = std::numeric_limits<float>::quiet_NaN();
  EXPECT_TRUE(throws_error([&] { memory.set_bias(bias); }, ErrorKind::kInvalidArgument,
                           {"the memory bias at position 7 is not finite"}));
  bias[7] = 0.0f;
  memory.set_bias(bias);
  const auto packed = packed_block(KvDtype::kF16, 3, 1);
  EXPECT_TRUE(throws_error([&] { memory.add(block_of(*packed), packed); },
                           ErrorKind::kInvalidArgument, {"whose bias is set"}));
}

}  // namespace
}  // namespace kvrag
