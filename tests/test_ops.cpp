// Kernels against naive scalar references.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "core/error.h"
#include "core/ops.h"
#include "core/parallel.h"
#include "tests/tensor_checks.h"

namespace kvrag {
namespace {

using testing::random_normal_tensor;

TEST(Ops, GemmOnStridedColumnSlices) {
  const Tensor a = random_normal_tensor(4, 6, 3);  // two "heads" of width 3
  const Tensor b = random_normal_tensor(5, 6, 4);
  Tensor c(4, 5);
  gemm(a.view().cols_slice(3, 3), false, b.view().cols_slice(3, 3), true, c.view());
  for (int64_t i = 0; i < 4; ++i) {
    for (int64_t j = 0; j < 5; ++j) {
      double ref = 0;
      for (int64_t k = 0; k < 3; ++k) ref += double(a.at(i, 3 + k)) * b.at(j, 3 + k);
      EXPECT_NEAR(c.at(i, j), ref, 1e-5);
    }
  }
}

// One output row takes the cblas_sgemv path; every transpose combination,
// strided operands, alpha and beta must still mean what they mean for sgemm.
TEST(Ops, OneRowGemmMatchesScalarReferenceForEveryTranspose) {
  const Tensor big_a = random_normal_tensor(6, 9, 5);
  const Tensor big_b = random_normal_tensor(6, 9, 6);
  for (const bool trans_a : {false, true}) {
    for (const bool trans_b : {false, true}) {
      // op(a): [1, 4]; op(b): [4, 3]; both strided slices of wider matrices.
      const ConstView a = trans_a ? big_a.view().rows_slice(0, 4).cols_slice(2, 1)
                                  : big_a.view().rows_slice(1, 1).cols_slice(2, 4);
      const ConstView b = trans_b ? big_b.view().rows_slice(0, 3).cols_slice(1, 4)
                                  : big_b.view().rows_slice(0, 4).cols_slice(1, 3);
      Tensor c(1, 3);
      for (int64_t j = 0; j < 3; ++j) c.at(0, j) = 1.0f;
      gemm(a, trans_a, b, trans_b, c.view(), /*alpha=*/2.0f, /*beta=*/0.5f);
      for (int64_t j = 0; j < 3; ++j) {
        double ref = 0;
        for (int64_t k = 0; k < 4; ++k) {
          const float ak = trans_a ? a.row(k)[0] : a.row(0)[k];
          const float bk = trans_b ? b.row(j)[k] : b.row(k)[j];
          ref += double(ak) * bk;
        }
        EXPECT_NEAR(c.at(0, j), 2.0 * ref + 0.5, 1e-5)
            << "trans_a " << trans_a << " trans_b " << trans_b << " column " << j;
      }
    }
  }
}

TEST(Ops, GemmRejectsMismatchedShapes) {
  const Tensor a(2, 3);
  const Tensor b(4, 2);
  Tensor c(2, 2);
  EXPECT_THROW(gemm(a.view(), false, b.view(), false, c.view()), Error);
}

TEST(Ops, RmsNormHasNoMeanSubtraction) {
  Tensor x(1, 4, {1.0f, 2.0f, 3.0f, 4.0f});
  const Tensor w(1, 4, {1.0f, 0.5f, 2.0f, 1.0f});
  Tensor out(1, 4);
  rms_norm(x.view(), w.view(), 1e-6f, out.view());
  const double rms = std::sqrt((1 + 4 + 9 + 16) / 4.0 + 1e-6);
  EXPECT_NEAR(out.at(0, 0), 1.0 / rms, 1e-6);
  EXPECT_NEAR(out.at(0, 1), 0.5 * 2.0 / rms, 1e-6);
  EXPECT_NEAR(out.at(0, 2), 2.0 * 3.0 / rms, 1e-6);
}

TEST(Ops, SoftmaxRowsSumToOneAndSurviveLargeLogits) {
  Tensor x(2, 3, {1000.0f, 1001.0f, 1002.0f, -INFINITY, 0.0f, 0.0f});
  softmax_rows(x.view());
  EXPECT_NEAR(x.at(0, 0) + x.at(0, 1) + x.at(0, 2), 1.0f, 1e-6);
  EXPECT_NEAR(x.at(0, 2), 1.0 / (1 + std::exp(-1.0) + std::exp(-2.0)), 1e-6);
  EXPECT_EQ(x.at(1, 0), 0.0f);
  EXPECT_NEAR(x.at(1, 1), 0.5f, 1e-7);
}

// softmax_rows and gelu_tanh compute e^x in vectorised arithmetic, not with
// std::exp: over the whole range they use, both stay close to a double
// reference (GELU within 5e-7 relative; softmax within its float sum's
// rounding).
TEST(Ops, SoftmaxMatchesDoubleAcrossTheExponentialsRange) {
  std::vector<float> logits;
  for (float v = -100.0f; v <= 0.0f; v += 0.0137f) logits.push_back(v);
  Tensor x(1, static_cast<int64_t>(logits.size()), logits);
  softmax_rows(x.view());
  double sum = 0.0;
  for (const float v : logits) sum += std::exp(double(v));
  for (size_t j = 0; j < logits.size(); ++j) {
    const double want = std::exp(double(logits[j])) / sum;
    // 1e-5: the float sum of 7,300 terms, the same for every entry.
    ASSERT_NEAR(x.at(0, static_cast<int64_t>(j)), want, 1e-5 * want + 1e-38) << logits[j];
  }
}

TEST(Ops, GeluMatchesDoubleFromLargeNegativeToLargePositive) {
  std::vector<float> values;
  for (float v = -12.0f; v <= 12.0f; v += 0.00731f) values.push_back(v);
  values.insert(values.end(), {-1e4f, -50.0f, 0.0f, 50.0f, 1e4f});
  Tensor x(1, static_cast<int64_t>(values.size()), values);
  gelu_tanh(x.view());
  for (size_t j = 0; j < values.size(); ++j) {
    const double v = values[j];
    const double want = 0.5 * v * (1 + std::tanh(std::sqrt(2 / M_PI) * (v + 0.044715 * v * v * v)));
    ASSERT_NEAR(x.at(0, static_cast<int64_t>(j)), want, 5e-7 * std::abs(v) + 1e-30) << v;
  }
}

TEST(Ops, GeluIsTheTanhForm) {
  Tensor x(1, 3, {-1.0f, 0.5f, 3.0f});
  gelu_tanh(x.view());
  for (auto [got, v] : {std::pair{x.at(0, 0), -1.0}, {x.at(0, 1), 0.5}, {x.at(0, 2), 3.0}}) {
    const double ref = 0.5 * v * (1 + std::tanh(std::sqrt(2 / M_PI) * (v + 0.044715 * v * v * v)));
    EXPECT_NEAR(got, ref, 1e-6);
    const double erf_form = 0.5 * v * (1 + std::erf(v / std::sqrt(2.0)));
    EXPECT_GT(std::abs(got - erf_form), 1e-5) << "must not be the erf GELU";
  }
}

TEST(Ops, GatedGeluAndRelu) {
  Tensor gate(1, 2, {1.0f, -2.0f});
  const Tensor up(1, 2, {2.0f, 3.0f});
  gated_gelu(gate.view(), up.view());
  const auto gelu = [](double v) {
    return 0.5 * v * (1 + std::tanh(std::sqrt(2 / M_PI) * (v + 0.044715 * v * v * v)));
  };
  EXPECT_NEAR(gate.at(0, 0), gelu(1.0) * 2.0, 1e-6);
  EXPECT_NEAR(gate.at(0, 1), gelu(-2.0) * 3.0, 1e-6);
  Tensor r(1, 3, {-1.0f, 0.0f, 2.0f});
  relu(r.view());
  EXPECT_EQ(r.at(0, 0), 0.0f);
  EXPECT_EQ(r.at(0, 2), 2.0f);
}

}  // namespace
}  // namespace kvrag
