// The packed-row kernels against naive scalar references over the rows
// unpacked, for every dtype, on the portable path and (where the CPU has
// them) the AVX2/F16C and AVX-512 paths; segments of 64 (a head), of 13
// (tails that the eight-wide loops leave to scalar code) and of 29 (16 + 8
// + a tail: every step of the AVX-512 loops).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "core/half.h"
#include "core/packed_rows.h"
#include "data/kv_blob.h"
#include "tests/tensor_checks.h"

namespace kvrag {
namespace {

// One matrix of random rows packed in `dtype` (through the blob encoder,
// the one producer of packed rows), and those rows unpacked.
struct PackedCase {
  PackedMatrices packed;
  Tensor unpacked;
};

PackedCase make_case(KvDtype dtype, int64_t rows, int64_t cols, uint32_t seed) {
  const Tensor values = testing::random_normal_tensor(rows, cols, seed);
  const std::vector<ConstView> matrices{values.view()};
  PackedCase c;
  c.packed = read_kv_blob(encode_kv_blob(dtype, matrices), "test");
  c.unpacked = Tensor(rows, cols);
  for (int64_t i = 0; i < rows; ++i) unpack_row(c.packed.matrices[0], i, c.unpacked.row(i));
  return c;
}

// int8's quantisation as the blob format defines it: q = round(v / scale),
// scale = max |row| / 127.
float int8_value(float v, float max_abs) {
  const float scale = max_abs / 127.0f;
  return std::nearbyint(v * (1.0f / scale)) * scale;
}

TEST(PackedRows, UnpackGivesTheStoredValues) {
  const Tensor values = testing::random_normal_tensor(3, 8, 5);
  for (const KvDtype dtype : {KvDtype::kF32, KvDtype::kF16, KvDtype::kInt8}) {
    const PackedCase c = make_case(dtype, 3, 8, 5);
    for (int64_t i = 0; i < 3; ++i) {
      float max_abs = 0.0f;
      for (int64_t j = 0; j < 8; ++j) max_abs = std::max(max_abs, std::abs(values.at(i, j)));
      for (int64_t j = 0; j < 8; ++j) {
        const float v = values.at(i, j);
        const float want = dtype == KvDtype::kF32   ? v
                           : dtype == KvDtype::kF16 ? half_to_float(float_to_half(v))
                                                    : int8_value(v, max_abs);
        EXPECT_NEAR(c.unpacked.at(i, j), want, 1e-6f * max_abs) << kv_dtype_name(dtype);
      }
    }
  }
}

// Rows of `cols` values of `dtype`, `pad` bytes between them, all 0.5;
// then `bad` written at (row, col) (an int8 row's is its scale).
std::vector<uint8_t> rows_with(KvDtype dtype, int64_t rows, int64_t cols, size_t pad, int64_t row,
                               int64_t col, float bad) {
  const size_t stride = packed_row_bytes(dtype, cols) + pad;
  std::vector<uint8_t> bytes(stride * static_cast<size_t>(rows), 0);
  auto put = [&](int64_t r, int64_t c, float v) {
    uint8_t* at = bytes.data() + stride * static_cast<size_t>(r);
    if (dtype == KvDtype::kF32) std::memcpy(at + 4 * c, &v, 4);
    if (dtype == KvDtype::kF16) {
      const uint16_t h = float_to_half(v);
      std::memcpy(at + 2 * c, &h, 2);
    }
    if (dtype == KvDtype::kInt8) std::memcpy(at, &v, 4);  // the scale
  };
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = 0; c < cols; ++c) put(r, c, 0.5f);
  }
  if (row >= 0) put(row, col, bad);
  return bytes;
}

// NaN and ±Inf anywhere, in runs that are and are not multiples of the
// vector width, contiguous and strided, are found in the right row; f16
// values beyond its range are Inf.
TEST(PackedRows, FirstNonFiniteRowFindsEveryNaNAndInf) {
  const float bads[] = {std::nanf(""), INFINITY, -INFINITY};
  for (const KvDtype dtype : {KvDtype::kF32, KvDtype::kF16, KvDtype::kInt8}) {
    for (const int64_t cols : {1, 7, 16, 17, 33, 768}) {
      for (const size_t pad : {size_t{0}, size_t{6}}) {
        const int64_t rows = 3;
        const size_t stride = packed_row_bytes(dtype, cols) + pad;
        const std::vector<uint8_t> clean = rows_with(dtype, rows, cols, pad, -1, 0, 0.0f);
        EXPECT_EQ(first_non_finite_row(PackedRows{dtype, clean.data(), rows, cols, stride}), rows);
        for (int64_t r = 0; r < rows; ++r) {
          for (const int64_t c : {int64_t{0}, cols / 2, cols - 1}) {
            for (const float bad : bads) {
              const std::vector<uint8_t> b = rows_with(dtype, rows, cols, pad, r, c, bad);
              EXPECT_EQ(first_non_finite_row(PackedRows{dtype, b.data(), rows, cols, stride}), r)
                  << kv_dtype_name(dtype) << " cols " << cols << " pad " << pad << " at " << r
                  << "," << c << " value " << bad;
            }
          }
        }
      }
    }
  }
  const std::vector<uint8_t> big = rows_with(KvDtype::kF16, 2, 40, 0, 1, 39, 70000.0f);
  EXPECT_EQ(first_non_finite_row(PackedRows{KvDtype::kF16, big.data(), 2, 40, 80}), 1);
}

TEST(PackedRows, RowBytesPerDtype) {
  EXPECT_EQ(packed_row_bytes(KvDtype::kF32, 64), 256u);
  EXPECT_EQ(packed_row_bytes(KvDtype::kF16, 64), 128u);
  EXPECT_EQ(packed_row_bytes(KvDtype::kInt8, 64), 68u);
  const Tensor t(2, 5);
  EXPECT_EQ(packed_view(t.view()).bytes(), 40);
}

// Rows in the cases below: a group of four (the AVX2 kernels' unit) and a
// tail of three.
constexpr int64_t kRuns = 7;

TEST(PackedRows, SegmentDotsMatchTheScalarReference) {
  for (const auto& [cols, segment] : {std::pair<int64_t, int64_t>{192, 64}, {39, 13}, {87, 29}}) {
    const int64_t segments = cols / segment;
    const Tensor x = testing::random_normal_tensor(1, cols, 7);
    for (const KvDtype dtype : {KvDtype::kF32, KvDtype::kF16, KvDtype::kInt8}) {
      const PackedCase c = make_case(dtype, kRuns, cols, 11);
      const PackedRows& m = c.packed.matrices[0];
      for (const PackedKernels* kernels : packed_kernel_sets()) {
        std::vector<float> got(static_cast<size_t>(kRuns * segments));
        kernels->segment_dots(dtype, m.row(0), m.stride, kRuns, cols, x.data(), segment,
                              got.data());
        std::vector<float> want(got.size());
        for (int64_t i = 0; i < kRuns; ++i) {
          for (int64_t s = 0; s < segments; ++s) {
            double sum = 0.0;
            for (int64_t j = s * segment; j < (s + 1) * segment; ++j) {
              sum += static_cast<double>(x.at(0, j)) * c.unpacked.at(i, j);
            }
            want[static_cast<size_t>(i * segments + s)] = static_cast<float>(sum);
          }
        }
        EXPECT_LT(testing::relative_error(got, want), 1e-5)
            << kernels->name << " " << kv_dtype_name(dtype) << " segment " << segment;
      }
    }
  }
}

TEST(PackedRows, SegmentAxpyMatchesTheScalarReference) {
  for (const auto& [cols, segment] : {std::pair<int64_t, int64_t>{192, 64}, {39, 13}, {87, 29}}) {
    const int64_t segments = cols / segment;
    const Tensor a = testing::random_normal_tensor(kRuns, segments, 3);
    const Tensor y0 = testing::random_normal_tensor(1, cols, 4);
    for (const KvDtype dtype : {KvDtype::kF32, KvDtype::kF16, KvDtype::kInt8}) {
      const PackedCase c = make_case(dtype, kRuns, cols, 13);
      const PackedRows& m = c.packed.matrices[0];
      for (const PackedKernels* kernels : packed_kernel_sets()) {
        std::vector<float> got(y0.data(), y0.data() + cols);
        kernels->segment_axpy(dtype, m.row(0), m.stride, kRuns, cols, a.data(), segment,
                              got.data());
        std::vector<double> want(y0.data(), y0.data() + cols);
        for (int64_t i = 0; i < kRuns; ++i) {
          for (int64_t j = 0; j < cols; ++j) {
            want[j] += static_cast<double>(a.at(i, j / segment)) * c.unpacked.at(i, j);
          }
        }
        EXPECT_LT(testing::relative_error(got, std::vector<float>(want.begin(), want.end())), 1e-5)
            << kernels->name << " " << kv_dtype_name(dtype) << " segment " << segment;
      }
    }
  }
}

// Attention splits the memory over threads at positions that depend on the
// thread count: a row's score and the value sum must not depend on how the
// rows are grouped, bit for bit.
TEST(PackedRows, KernelsGiveTheSameBitsHoweverTheRowsAreGrouped) {
  const int64_t cols = 192;
  const int64_t segment = 64;
  const int64_t segments = cols / segment;
  const Tensor x = testing::random_normal_tensor(1, cols, 21);
  const Tensor a = testing::random_normal_tensor(kRuns, segments, 22);
  for (const KvDtype dtype : {KvDtype::kF32, KvDtype::kF16, KvDtype::kInt8}) {
    const PackedCase c = make_case(dtype, kRuns, cols, 23);
    const PackedRows& m = c.packed.matrices[0];
    for (const PackedKernels* kernels : packed_kernel_sets()) {
      std::vector<float> dots_together(static_cast<size_t>(kRuns * segments));
      std::vector<float> dots_apart(dots_together.size());
      std::vector<float> sum_together(static_cast<size_t>(cols), 0.5f);
      std::vector<float> sum_apart(sum_together);
      kernels->segment_dots(dtype, m.row(0), m.stride, kRuns, cols, x.data(), segment,
                            dots_together.data());
      kernels->segment_axpy(dtype, m.row(0), m.stride, kRuns, cols, a.data(), segment,
                            sum_together.data());
      for (int64_t i = 0; i < kRuns; ++i) {
        kernels->segment_dots(dtype, m.row(i), m.stride, 1, cols, x.data(), segment,
                              dots_apart.data() + i * segments);
        kernels->segment_axpy(dtype, m.row(i), m.stride, 1, cols, a.row(i), segment,
                              sum_apart.data());
      }
      EXPECT_EQ(dots_together, dots_apart) << kernels->name << " " << kv_dtype_name(dtype);
      EXPECT_EQ(sum_together, sum_apart) << kernels->name << " " << kv_dtype_name(dtype);
    }
  }
}

// The vector kernels add each value row into an output in the same order
// whatever their width (AVX-512 and AVX2 alike): the same bits.
TEST(PackedRows, VectorAxpyKernelsGiveTheSameBitsAtEveryWidth) {
  const std::vector<const PackedKernels*>& sets = packed_kernel_sets();
  if (sets.size() < 3) GTEST_SKIP() << "this CPU runs fewer than two vector kernel sets";
  const int64_t cols = 87;
  const int64_t segment = 29;
  const Tensor a = testing::random_normal_tensor(kRuns, cols / segment, 31);
  const Tensor y0 = testing::random_normal_tensor(1, cols, 32);
  for (const KvDtype dtype : {KvDtype::kF32, KvDtype::kF16, KvDtype::kInt8}) {
    const PackedCase c = make_case(dtype, kRuns, cols, 33);
    const PackedRows& m = c.packed.matrices[0];
    std::vector<std::vector<float>> sums;
    for (size_t k = 1; k < sets.size(); ++k) {
      sums.emplace_back(y0.data(), y0.data() + cols);
      sets[k]->segment_axpy(dtype, m.row(0), m.stride, kRuns, cols, a.data(), segment,
                            sums.back().data());
    }
    for (size_t k = 1; k < sums.size(); ++k) {
      EXPECT_EQ(sums[k], sums[0]) << sets[k + 1]->name << " against " << sets[1]->name << " "
                                  << kv_dtype_name(dtype);
    }
  }
}

TEST(PackedRows, TheBestKernelsAreChosenForThisCpu) {
  const std::vector<const PackedKernels*>& sets = packed_kernel_sets();
  ASSERT_FALSE(sets.empty());
  EXPECT_STREQ(sets.front()->name, "portable");
  EXPECT_EQ(&packed_kernels(), sets.back());
#if defined(__x86_64__)
  const char* best = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq")
                         ? "avx512"
                     : __builtin_cpu_supports("avx2") ? "avx2"
                                                      : "portable";
  EXPECT_STREQ(packed_kernels().name, best);
#endif
}

}  // namespace
}  // namespace kvrag
