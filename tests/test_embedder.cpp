#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <vector>

#include "core/error.h"
#include "core/tensor.h"
#include "retriever/embedder.h"
#include "tests/model_files.h"
#include "tests/tensor_checks.h"

namespace kvrag {
namespace {

using testing::random_normal_tensor;

// Scalar reference: column means, then divided by their L2 norm.
std::vector<double> reference_embedding(ConstView x) {
  std::vector<double> mean(x.cols, 0.0);
  for (int64_t i = 0; i < x.rows; ++i) {
    for (int64_t j = 0; j < x.cols; ++j) mean[j] += x.row(i)[j] / static_cast<double>(x.rows);
  }
  double norm = 0.0;
  for (const double m : mean) norm += m * m;
  for (double& m : mean) m /= std::sqrt(norm);
  return mean;
}

double l2_norm(const std::vector<float>& v) {
  double sum = 0.0;
  for (const float x : v) sum += double(x) * x;
  return std::sqrt(sum);
}

TEST(Embedder, IsTheNormalisedMeanOfAllPositions) {
  const Tensor states = random_normal_tensor(37, 64, 1, 0.5f, 2.0f);
  const std::vector<float> e = embed(states.view());
  const std::vector<double> want = reference_embedding(states.view());
  ASSERT_EQ(e.size(), 64u);
  for (size_t j = 0; j < e.size(); ++j) EXPECT_NEAR(e[j], want[j], 1e-6) << j;
  EXPECT_NEAR(l2_norm(e), 1.0, 1e-6);
}

TEST(Embedder, EveryPositionCountsIncludingTheLast) {
  Tensor states = random_normal_tensor(5, 16, 2, 0.5f, 2.0f);
  const std::vector<float> before = embed(states.view());
  states.at(4, 3) += 10.0f;  // the eos position
  const std::vector<float> after = embed(states.view());
  EXPECT_GT(std::abs(after[3] - before[3]), 1e-3);
}

TEST(Embedder, IgnoresScaleAndReadsStridedViews) {
  const Tensor states = random_normal_tensor(6, 24, 3, 0.5f, 2.0f);
  Tensor scaled = states;
  for (int64_t i = 0; i < scaled.size(); ++i) scaled.data()[i] *= 7.5f;
  const std::vector<float> a = embed(states.view());
  const std::vector<float> b = embed(scaled.view());
  for (size_t j = 0; j < a.size(); ++j) EXPECT_NEAR(a[j], b[j], 1e-6);

  const ConstView slice = states.cview().cols_slice(8, 8);  // ld 24 > cols 8
  const std::vector<float> s = embed(slice);
  const std::vector<double> want = reference_embedding(slice);
  ASSERT_EQ(s.size(), 8u);
  for (size_t j = 0; j < s.size(); ++j) EXPECT_NEAR(s[j], want[j], 1e-6);
}

TEST(Embedder, ZeroMeanGivesZerosAndNoRowsIsAnError) {
  Tensor states(2, 4);
  for (int64_t j = 0; j < 4; ++j) {
    states.at(0, j) = 1.5f;
    states.at(1, j) = -1.5f;
  }
  EXPECT_EQ(embed(states.view()), std::vector<float>(4, 0.0f));
  const Tensor empty(0, 4);
  EXPECT_TRUE(testing::throws_error([&] { embed(empty.view()); }, ErrorKind::kInvalidArgument,
                                    {"embed: encoder output of shape [0, 4] has no positions"}));
}

}  // namespace
}  // namespace kvrag
