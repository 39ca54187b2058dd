#include "tests/tensor_checks.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>

namespace kvrag::testing {

Tensor random_normal_tensor(int64_t rows, int64_t cols, uint32_t seed, float mean, float stddev) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(mean, stddev);
  Tensor t(rows, cols);
  for (int64_t i = 0; i < t.size(); ++i) t.data()[i] = normal(rng);
  return t;
}

double relative_error(std::span<const float> got, std::span<const float> want) {
  EXPECT_EQ(got.size(), want.size());
  double max_diff = 0.0;
  double max_ref = 0.0;
  for (size_t i = 0; i < std::min(got.size(), want.size()); ++i) {
    max_diff = std::max(max_diff, std::abs(double(got[i]) - double(want[i])));
    max_ref = std::max(max_ref, std::abs(double(want[i])));
  }
  return max_ref > 0 ? max_diff / max_ref : max_diff;
}

double relative_error(const Tensor& got, const Tensor& want) {
  EXPECT_EQ(got.rows(), want.rows());
  EXPECT_EQ(got.cols(), want.cols());
  return relative_error(std::span<const float>(got.data(), static_cast<size_t>(got.size())),
                        std::span<const float>(want.data(), static_cast<size_t>(want.size())));
}

}  // namespace kvrag::testing
