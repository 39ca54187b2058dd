// int8 weights (load_t5_model(dir, WeightDtype::kInt8)) against float32 on
// the T5 reference fixtures (../shared/fixtures/t5): the same inputs through
// both models, each from its own encoding. The fixtures' random weights and
// d_model of 32 and 48 make this a harder case than a trained model: an int8
// step of a row is max|w|/127, and short rows average less of the error out.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <iostream>
#include <memory>

#include "core/safetensors.h"
#include "decoder/generation.h"
#include "decoder/t5_decoder.h"
#include "encoder/cross_kv.h"
#include "encoder/t5_encoder.h"
#include "tests/fixtures.h"
#include "tests/tensor_checks.h"

namespace kvrag {
namespace {

// Stated bound on int8 logits: max |int8 − f32| ≤ kLogitTolerance · max |f32|
// over every logit of a case. Observed: 0.191 (t5v11_gatedgelu_untied) and
// 0.096 (t5v1_relu_tied) — 0.151 and 0.047 with float32 activations (every
// product here quantises its activations too: oneDNN's and the direct
// path do) — where one int8 product is within 0.6 % of its f32
// value: the fixtures' attention logits of order 3 (no 1/sqrt(d_kv)) and
// rows of 32 to 80 values amplify that through the layers (the encoder
// output alone is 6 % and 3 % off). A trained model is the real check: the
// demo model's EM (README, "int8 weights").
constexpr double kLogitTolerance = 0.2;
// Greedy steps are compared where f32's top-1 leads its top-2 by more than
// this share of max |f32 logit|.
constexpr float kGreedyMargin = 0.1f;

// The fixture's first input sequence (its unpadded tokens).
std::vector<int32_t> first_input(const SafeTensorsFile& expected) {
  const std::vector<int64_t> ids = expected.read_i64("input_ids");
  const std::vector<int64_t> mask = expected.read_i64("attention_mask");
  const int64_t t = expected.info("input_ids").shape[1];
  std::vector<int32_t> out;
  for (int64_t i = 0; i < t; ++i) {
    if (mask[i] == 1) out.push_back(static_cast<int32_t>(ids[i]));
  }
  return out;
}

// The memory the decoder of `model` reads for `ids`: its own encoder's output.
CrossMemory memory_of(const std::shared_ptr<const T5Model>& model,
                      const std::vector<int32_t>& ids) {
  const Tensor states = T5Encoder(model).encode(ids);
  return CrossMemory(project_cross_kv(*model, states.view()));
}

int64_t argmax(const float* row, int64_t n) { return std::max_element(row, row + n) - row; }

// Top-1 minus top-2 of a row.
float margin(const float* row, int64_t n) {
  std::vector<float> sorted(row, row + n);
  std::partial_sort(sorted.begin(), sorted.begin() + 2, sorted.end(), std::greater<float>());
  return sorted[0] - sorted[1];
}

float max_abs(const Tensor& t) {
  float m = 0.0f;
  for (int64_t i = 0; i < t.size(); ++i) m = std::max(m, std::abs(t.data()[i]));
  return m;
}

class Int8Parity : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    f32_ = load_t5_model(GetParam());
    int8_ = load_t5_model(GetParam(), WeightDtype::kInt8);
    expected_ = std::make_unique<SafeTensorsFile>(GetParam() + "/expected.safetensors");
    input_ = first_input(*expected_);
  }

  std::shared_ptr<const T5Model> f32_;
  std::shared_ptr<const T5Model> int8_;
  std::unique_ptr<SafeTensorsFile> expected_;
  std::vector<int32_t> input_;
};

TEST_P(Int8Parity, EveryMatrixIsInt8AndAQuarterOfTheBytes) {
  const T5Decoder f32(f32_);
  const T5Decoder int8(int8_);
  EXPECT_EQ(int8_->encoder_weights.shared.dtype(), WeightDtype::kInt8);
  EXPECT_EQ(int8_->decoder_weights.blocks[0].ffn.wo.dtype(), WeightDtype::kInt8);
  EXPECT_EQ(int8_->encoder_weights.cross_kv.dtype(), WeightDtype::kInt8);
  // Norms and position biases stay float32, so a bit over a quarter.
  const double share =
      static_cast<double>(int8.step_weight_bytes()) / static_cast<double>(f32.step_weight_bytes());
  std::cout << "[int8] " << GetParam() << " step bytes int8/f32 = " << share << "\n";
  EXPECT_LT(share, 0.32);
  EXPECT_EQ(int8_->fingerprint, f32_->fingerprint) << "one checkpoint, one index fingerprint";
}

TEST_P(Int8Parity, LogitsStayWithinTheStatedTolerance) {
  const std::vector<int64_t> dec = expected_->read_i64("decoder_input_ids");
  const int64_t u = expected_->info("decoder_input_ids").shape[1];
  const std::vector<int32_t> ids(dec.begin(), dec.begin() + u);
  const Tensor want = T5Decoder(f32_).teacher_forced(ids, memory_of(f32_, input_)).logits;
  const Tensor got = T5Decoder(int8_).teacher_forced(ids, memory_of(int8_, input_)).logits;
  const double err = testing::relative_error(got, want);
  std::cout << "[int8] " << GetParam() << " logits max|int8 - f32|/max|f32| = " << err << "\n";
  EXPECT_LE(err, kLogitTolerance);
}

// Where f32's greedy choice leads clearly (kGreedyMargin), int8 must choose alike.
TEST_P(Int8Parity, GreedyIdsEqualWhereTheMarginExceedsTheBound) {
  GenerationOptions options;
  options.max_new_tokens = 16;
  const T5Decoder f32(f32_);
  const T5Decoder int8(int8_);
  const CrossMemory f32_memory = memory_of(f32_, input_);
  const CrossMemory int8_memory = memory_of(int8_, input_);
  const std::vector<int32_t> greedy = generate(f32, f32_memory, options).ids;
  // Row t of the teacher-forced logits chooses greedy[t + 1].
  const std::vector<int32_t> inputs(greedy.begin(), greedy.end() - 1);
  const Tensor want = f32.teacher_forced(inputs, f32_memory).logits;
  const Tensor got = int8.teacher_forced(inputs, int8_memory).logits;
  const float bound = kGreedyMargin * max_abs(want);
  const int64_t vocab = want.cols();
  int64_t checked = 0;
  int64_t agreeing_prefix = 0;  // steps before the first one the margin does not cover
  bool covered = true;
  for (int64_t t = 0; t < want.rows(); ++t) {
    ASSERT_EQ(argmax(want.row(t), vocab), greedy[t + 1]);
    if (margin(want.row(t), vocab) <= bound) {
      covered = false;
      continue;
    }
    ++checked;
    if (covered) ++agreeing_prefix;
    EXPECT_EQ(argmax(got.row(t), vocab), greedy[t + 1]) << "step " << t;
  }
  std::cout << "[int8] " << GetParam() << ": " << checked << " of " << want.rows()
            << " greedy steps have an f32 margin above " << bound << "\n";
  EXPECT_GT(checked, 0);
  // Free-running int8 greedy decoding follows f32's up to the first step the
  // bound does not cover (the start token, then agreeing_prefix tokens).
  const std::vector<int32_t> free = generate(int8, int8_memory, options).ids;
  const auto prefix = static_cast<size_t>(1 + agreeing_prefix);
  ASSERT_GE(free.size(), prefix);
  EXPECT_TRUE(std::equal(greedy.begin(), greedy.begin() + static_cast<std::ptrdiff_t>(prefix),
                         free.begin()));
}

INSTANTIATE_TEST_SUITE_P(Fixtures, Int8Parity, ::testing::ValuesIn(testing::t5_fixture_cases()),
                         testing::fixture_case_name);
GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(Int8Parity);

}  // namespace
}  // namespace kvrag
