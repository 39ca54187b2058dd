// int8 weights (core/int8_matrix.h, core/weight_matrix.h): per-row
// quantisation, the int8 dot kernels (portable and, where the CPU has it,
// AVX2) against exact integer sums, the two product paths against
// double-precision references of what each computes, and the dispatch.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "core/half.h"
#include "core/int8_matrix.h"
#include "core/parallel.h"
#include "core/weight_matrix.h"
#include "tests/model_files.h"
#include "tests/tensor_checks.h"

namespace kvrag {
namespace {

using testing::throws_error;

std::vector<const Int8Kernels*> kernel_sets() {
  std::vector<const Int8Kernels*> sets{&portable_int8_kernels()};
  if (avx2_int8_kernels() != nullptr) sets.push_back(avx2_int8_kernels());
  if (avx512_vnni_int8_kernels() != nullptr) sets.push_back(avx512_vnni_int8_kernels());
  return sets;
}

// Values in [-127, 127], the extremes included, from a fixed seed.
std::vector<int8_t> random_int8(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> value(-127, 127);
  std::vector<int8_t> out(n);
  for (int8_t& v : out) v = static_cast<int8_t>(value(rng));
  out[0] = 127;
  if (n > 1) out[1] = -127;
  return out;
}

// out[r][o] = scale_w[o] · scale_x[r] · Σ q_w q_x in double: what
// linear_int8_direct computes, x quantised as it quantises it.
Tensor direct_reference(ConstView x, const Int8Matrix& w) {
  Tensor out(x.rows, w.rows);
  std::vector<int8_t> q(static_cast<size_t>(x.cols));
  for (int64_t r = 0; r < x.rows; ++r) {
    const double x_scale = quantize_row(x.row(r), x.cols, q.data());
    for (int64_t o = 0; o < w.rows; ++o) {
      double sum = 0;
      for (int64_t j = 0; j < w.cols; ++j) sum += double(w.row(o)[j]) * double(q[j]);
      out.at(r, o) = static_cast<float>(sum * x_scale * w.scales[o]);
    }
  }
  return out;
}

// x · dequantised(w)ᵀ in double: what linear_int8_dequantized computes.
Tensor dequantized_reference(ConstView x, const Int8Matrix& w) {
  Tensor out(x.rows, w.rows);
  for (int64_t r = 0; r < x.rows; ++r) {
    for (int64_t o = 0; o < w.rows; ++o) {
      double sum = 0;
      for (int64_t j = 0; j < w.cols; ++j) {
        sum += double(x.row(r)[j]) * double(w.row(o)[j]) * double(w.scales[o]);
      }
      out.at(r, o) = static_cast<float>(sum);
    }
  }
  return out;
}

TEST(Int8Matrix, QuantizeRowScalesByTheLargestMagnitude) {
  const std::vector<float> x = {0.5f, -2.54f, 1.0f, 0.0f, 2.0f};
  std::vector<int8_t> q(x.size());
  const float scale = quantize_row(x.data(), 5, q.data());
  EXPECT_FLOAT_EQ(scale, 2.54f / 127.0f);
  EXPECT_EQ(q[1], -127);
  EXPECT_EQ(q[3], 0);
  for (size_t j = 0; j < x.size(); ++j)
    EXPECT_LE(std::abs(q[j] * scale - x[j]), scale / 2 * 1.0001f);

  const std::vector<float> zeros(7, 0.0f);
  std::vector<int8_t> qz(7, 5);
  EXPECT_EQ(quantize_row(zeros.data(), 7, qz.data()), 0.0f);
  for (int8_t v : qz) EXPECT_EQ(v, 0);
}

// A NaN or an infinity anywhere in the row is an error: std::max skipped a
// NaN and the cast made it 0, so a NaN activation became a finite product.
// A row too small for 1 / scale is zeros, not infinities and NaN.
TEST(Int8Matrix, QuantizeRowRefusesNonFiniteValuesAndZeroesTinyRows) {
  std::vector<int8_t> q(4);
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float inf = std::numeric_limits<float>::infinity();
  for (const std::vector<float>& x : std::vector<std::vector<float>>{
           {nan, 0.0f, 0.0f, 0.0f}, {1.0f, nan, 2.0f, 0.5f}, {0.5f, -inf, 1.0f, 0.0f}}) {
    EXPECT_TRUE(testing::throws_error([&] { quantize_row(x.data(), 4, q.data()); },
                                      ErrorKind::kInternal, {"int8 quantisation of a row of 4"}));
  }
  const std::vector<float> tiny = {1e-38f, 0.0f, -2e-38f, 0.0f};
  EXPECT_EQ(quantize_row(tiny.data(), 4, q.data()), 0.0f);
  for (int8_t v : q) EXPECT_EQ(v, 0);
}

TEST(Int8Matrix, QuantizeRowRoundsAsNearbyintTiesToEven) {
  // Max 127 makes the scale 1, so each value is rounded as it stands:
  // every half-way point between -127 and 127 and values beside them.
  std::vector<float> x = {127.0f};
  for (float v = -126.5f; v <= 126.5f; v += 1.0f) {
    x.insert(x.end(), {v, std::nextafter(v, -200.0f), std::nextafter(v, 200.0f)});
  }
  std::vector<int8_t> q(x.size());
  ASSERT_EQ(quantize_row(x.data(), static_cast<int64_t>(x.size()), q.data()), 1.0f);
  for (size_t j = 0; j < x.size(); ++j) {
    EXPECT_EQ(q[j], static_cast<int8_t>(std::nearbyint(x[j]))) << x[j];
  }
}

TEST(Int8Matrix, QuantizedRowsRoundTripWithinHalfAStep) {
  const Tensor w = testing::random_normal_tensor(5, 300, 3);
  const Int8Matrix m = quantize_int8(w.view());
  ASSERT_EQ(m.rows, 5);
  ASSERT_EQ(m.cols, 300);
  EXPECT_EQ(m.bytes(), 5 * 300 + 5 * 4);
  Tensor back(5, 300);
  dequantize_rows(m, 0, back.view());
  for (int64_t i = 0; i < 5; ++i) {
    for (int64_t j = 0; j < 300; ++j) {
      EXPECT_LE(std::abs(back.at(i, j) - w.at(i, j)), m.scales[i] / 2 * 1.0001f);
    }
  }
}

TEST(Int8Matrix, KernelsSumExactlyForEveryTailAndRowCount) {
  for (const Int8Kernels* kernels : kernel_sets()) {
    for (const int64_t cols : {1, 31, 32, 33, 63, 64, 65, 95, 768, 3077}) {
      for (const int64_t w_rows : {1, 4, 7}) {
        for (const int64_t rows : {1, 2, 3, 4, 5, 8, 9}) {
          const int64_t stride = cols + 7;  // rows apart, as a caller may hold them
          const auto w = random_int8(static_cast<size_t>(w_rows * stride), 11);
          const auto x = random_int8(static_cast<size_t>(rows * stride), 12);
          std::vector<int32_t> got(static_cast<size_t>(w_rows * rows));
          kernels->dots(w.data(), stride, w_rows, x.data(), stride, rows, cols, got.data());
          for (int64_t o = 0; o < w_rows; ++o) {
            for (int64_t r = 0; r < rows; ++r) {
              int64_t want = 0;
              for (int64_t j = 0; j < cols; ++j) {
                want += int64_t(w[o * stride + j]) * x[r * stride + j];
              }
              ASSERT_EQ(got[o * rows + r], want)
                  << kernels->name << " cols " << cols << " weight row " << o << "/" << w_rows
                  << " row " << r << "/" << rows;
            }
          }
        }
      }
    }
  }
}

TEST(Int8Matrix, KernelsDoNotSaturateAtTheExtremes) {
  // maddubs sums pairs to int16: 2 · 127 · 127 = 32258 must not clip.
  for (const Int8Kernels* kernels : kernel_sets()) {
    for (const int8_t sign : {int8_t{1}, int8_t{-1}}) {
      const std::vector<int8_t> w(4 * 4096, static_cast<int8_t>(127 * sign));
      const std::vector<int8_t> x(4096, -127);
      for (const int64_t w_rows : {1, 4}) {
        std::vector<int32_t> got(static_cast<size_t>(w_rows));
        kernels->dots(w.data(), 4096, w_rows, x.data(), 4096, 1, 4096, got.data());
        for (const int32_t sum : got) EXPECT_EQ(sum, -4096 * 127 * 127 * sign) << kernels->name;
      }
    }
  }
}

TEST(Int8Matrix, DirectProductMatchesTheDoubleReference) {
  const Int8Matrix w = quantize_int8(testing::random_normal_tensor(300, 200, 21).view());
  for (const Int8Kernels* kernels : kernel_sets()) {
    for (const int64_t n : {1, 3, 8}) {
      const Tensor x = testing::random_normal_tensor(n, 200, 22);
      Tensor got(n, 300);
      linear_int8_direct(x.view(), w, got.view(), false, *kernels);
      EXPECT_LE(testing::relative_error(got, direct_reference(x.view(), w)), 1e-6)
          << kernels->name << " n " << n;
    }
  }
}

TEST(Int8Matrix, DirectProductAccumulatesOnEveryThreadCount) {
  const Int8Matrix w = quantize_int8(testing::random_normal_tensor(1000, 64, 31).view());
  const Tensor x = testing::random_normal_tensor(2, 64, 32);
  const Tensor start = testing::random_normal_tensor(2, 1000, 33);
  Tensor want = direct_reference(x.view(), w);
  for (int64_t i = 0; i < want.size(); ++i) want.data()[i] += start.data()[i];
  const int64_t threads = compute_threads();
  for (const int64_t t : {int64_t{1}, int64_t{2}, int64_t{3}}) {
    set_compute_threads(t);
    Tensor got = start;
    linear_int8_direct(x.view(), w, got.view(), true);
    EXPECT_LE(testing::relative_error(got, want), 1e-6) << t << " threads";
  }
  set_compute_threads(threads);
}

TEST(Int8Matrix, DequantizedProductMatchesTheDoubleReferenceAcrossTiles) {
  // 600 rows: two full tiles of 256 and a partial one.
  const Int8Matrix w = quantize_int8(testing::random_normal_tensor(600, 96, 41).view());
  const Tensor x = testing::random_normal_tensor(20, 96, 42);
  const Tensor start = testing::random_normal_tensor(20, 600, 43);
  Tensor want = dequantized_reference(x.view(), w);
  Tensor got(20, 600);
  linear_int8_dequantized(x.view(), w, got.view(), false);
  EXPECT_LE(testing::relative_error(got, want), 1e-5);
  for (int64_t i = 0; i < want.size(); ++i) want.data()[i] += start.data()[i];
  got = start;
  linear_int8_dequantized(x.view(), w, got.view(), true);
  EXPECT_LE(testing::relative_error(got, want), 1e-5);
}

TEST(Int8Matrix, OnednnProductEqualsTheDirectOneToTheBit) {
  if (!onednn_int8_supported()) GTEST_SKIP() << "this CPU has no VNNI: oneDNN's int8 path is off";
  // 700 columns: not a multiple of any vector width; 3 threads: uneven rows.
  const Int8Matrix w = quantize_int8(testing::random_normal_tensor(130, 700, 71).view());
  const int64_t threads = compute_threads();
  for (const int64_t t : {int64_t{1}, int64_t{3}}) {
    set_compute_threads(t);
    for (const int64_t n : {1, 16, 33, 100}) {
      const Tensor x = testing::random_normal_tensor(n, 700, 72);
      const Tensor start = testing::random_normal_tensor(n, 130, 73);
      for (const bool accumulate : {false, true}) {
        Tensor want = start;
        Tensor got = start;
        linear_int8_direct(x.view(), w, want.view(), accumulate);
        linear_int8_onednn(x.view(), w, got.view(), accumulate);
        EXPECT_EQ(testing::relative_error(got, want), 0.0)
            << n << " rows, " << t << " threads, accumulate " << accumulate;
      }
    }
  }
  set_compute_threads(threads);
}

TEST(Int8Matrix, LinearReadsInt8DirectlyForFewRowsOnly) {
  const WeightMatrix w(testing::random_normal_tensor(50, 40, 51), WeightDtype::kInt8);
  const int64_t beside_onednn = direct_max_rows_beside_onednn();
  EXPECT_EQ(beside_onednn, avx512_vnni_int8_kernels() ? kInt8VnniDirectMaxRowsBesideOnednn
                                                      : kInt8DirectMaxRowsBesideOnednn);
  for (const int64_t n :
       {int64_t{1}, beside_onednn, beside_onednn + 1, kInt8DirectMaxRows, kInt8DirectMaxRows + 1}) {
    const Tensor x = testing::random_normal_tensor(n, 40, 52);
    Tensor got(n, 50);
    Tensor want(n, 50);
    linear(x.view(), w, got.view());
    if (onednn_int8_supported() && n > beside_onednn) {
      linear_int8_onednn(x.view(), w.int8(), want.view(), false);
    } else if (n <= kInt8DirectMaxRows) {
      linear_int8_direct(x.view(), w.int8(), want.view(), false);
    } else {
      linear_int8_dequantized(x.view(), w.int8(), want.view(), false);
    }
    EXPECT_EQ(testing::relative_error(got, want), 0.0) << n << " rows";
  }
}

TEST(Int8Matrix, ShapeMismatchIsAnInternalError) {
  const Int8Matrix w = quantize_int8(testing::random_normal_tensor(4, 8, 61).view());
  const Tensor x(1, 7);
  Tensor out(1, 4);
  EXPECT_TRUE(throws_error([&] { linear(x.view(), w, out.view()); }, ErrorKind::kInternal,
                           {"int8 linear: x [1, 7] · w [4, 8]ᵀ into [1, 4]"}));
}

TEST(WeightMatrix, HoldsEachDtypeAndSaysWhichItHas) {
  const Tensor values = testing::random_normal_tensor(3, 10, 71);
  const WeightMatrix f32(values);
  const WeightMatrix int8(values, WeightDtype::kInt8);
  EXPECT_EQ(f32.bytes(), 3 * 10 * 4);
  EXPECT_EQ(int8.bytes(), 3 * 10 + 3 * 4);
  EXPECT_EQ(int8.rows(), 3);
  EXPECT_EQ(int8.cols(), 10);
  std::vector<float> row(10);
  int8.row_f32(2, row.data());
  for (int64_t j = 0; j < 10; ++j) {
    EXPECT_NEAR(row[j], values.at(2, j), int8.int8().scales[2] / 2 * 1.0001f);
  }
  EXPECT_TRUE(throws_error([&] { int8.f32(); }, ErrorKind::kInternal,
                           {"float32 values asked of a weight held in int8"}));
  EXPECT_TRUE(throws_error([&] { f32.int8(); }, ErrorKind::kInternal,
                           {"int8 values asked of a weight held in f32"}));

  // The 16-bit dtypes: each weight rounded once, two bytes a value.
  const auto half_rounded = [](float v) { return half_to_float(float_to_half(v)); };
  const auto bf16_rounded = [](float v) { return bf16_to_float(float_to_bf16(v)); };
  for (const auto& [dtype, rounded] : {std::pair{WeightDtype::kF16, +half_rounded},
                                       std::pair{WeightDtype::kBf16, +bf16_rounded}}) {
    const WeightMatrix half(values, dtype);
    EXPECT_EQ(half.dtype(), dtype);
    EXPECT_EQ(half.bytes(), 3 * 10 * 2);
    EXPECT_EQ(half.rows(), 3);
    EXPECT_EQ(half.cols(), 10);
    half.row_f32(1, row.data());
    for (int64_t j = 0; j < 10; ++j) EXPECT_EQ(row[j], rounded(values.at(1, j))) << j;
    EXPECT_TRUE(throws_error(
        [&] { half.f32(); }, ErrorKind::kInternal,
        {"float32 values asked of a weight held in " + std::string(weight_dtype_name(dtype))}));
  }
  const WeightMatrix f16(values, WeightDtype::kF16);
  EXPECT_TRUE(throws_error([&] { f32.f16(); }, ErrorKind::kInternal,
                           {"binary16 values asked of a weight held in f32"}));
  EXPECT_TRUE(throws_error([&] { f16.bf16(); }, ErrorKind::kInternal,
                           {"bfloat16 values asked of a weight held in f16"}));
}

TEST(WeightMatrix, DtypeNamesParseBothWays) {
  EXPECT_EQ(parse_weight_dtype("int8"), WeightDtype::kInt8);
  EXPECT_EQ(parse_weight_dtype("f32"), WeightDtype::kF32);
  EXPECT_EQ(parse_weight_dtype("f16"), WeightDtype::kF16);
  EXPECT_STREQ(weight_dtype_name(WeightDtype::kInt8), "int8");
  EXPECT_EQ(parse_weight_dtype("bf16"), WeightDtype::kBf16);
  EXPECT_STREQ(weight_dtype_name(WeightDtype::kF16), "f16");
  EXPECT_STREQ(weight_dtype_name(WeightDtype::kBf16), "bf16");
  EXPECT_TRUE(throws_error([&] { parse_weight_dtype("fp8"); }, ErrorKind::kInvalidArgument,
                           {"unknown weight dtype 'fp8' (expected f32, int8, f16, bf16)"}));
}

TEST(ParallelFor, CoversTheRangeOnceAndRethrows) {
  const int64_t threads = compute_threads();
  set_compute_threads(2);
  std::vector<int> hits(1000, 0);
  parallel_for(1000, 10, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) ++hits[static_cast<size_t>(i)];
  });
  for (int h : hits) ASSERT_EQ(h, 1);
  EXPECT_TRUE(throws_error(
      [] { parallel_for(1000, 10, [](int64_t, int64_t) { KVRAG_THROW(kIo, "disk gone"); }); },
      ErrorKind::kIo, {"disk gone"}));
  set_compute_threads(threads);
  EXPECT_TRUE(throws_error([] { set_compute_threads(0); }, ErrorKind::kInvalidArgument,
                           {"--threads must be at least 1, got 0"}));
}

TEST(ParallelForEach, EachItemOnceItsKernelsOnItsThread) {
  const int64_t threads = compute_threads();
  set_compute_threads(2);
  std::vector<int> hits(8, 0);
  std::vector<int64_t> inner_threads(8, 0);
  parallel_for_each(8, [&](int64_t i) {
    ++hits[static_cast<size_t>(i)];
    inner_threads[static_cast<size_t>(i)] = compute_threads();
  });
  for (int h : hits) EXPECT_EQ(h, 1);
  for (int64_t t : inner_threads) EXPECT_EQ(t, 1);
  EXPECT_EQ(compute_threads(), 2);  // restored on the caller's thread
  int64_t alone = 0;
  parallel_for_each(1, [&](int64_t) { alone = compute_threads(); });
  EXPECT_EQ(alone, 2);  // a single item's kernels may split
  set_compute_threads(threads);
}

}  // namespace
}  // namespace kvrag
