// Panel-packed float32, binary16 and bfloat16 weights and their products
// against naive references.
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <vector>

#include "core/error.h"
#include "core/half.h"
#include "core/panel_matrix.h"
#include "core/parallel.h"
#include "tests/model_files.h"
#include "tests/tensor_checks.h"

namespace kvrag {
namespace {

using testing::random_normal_tensor;
using testing::throws_error;

// Every instruction set this CPU runs, narrowest first.
std::vector<VectorIsa> runnable_isas() {
  std::vector<VectorIsa> isas;
  for (const VectorIsa isa :
       {VectorIsa::kPortable, VectorIsa::kAvx2, VectorIsa::kAvx512, VectorIsa::kAvx512Bf16}) {
    if (isa <= widest_vector_isa()) isas.push_back(isa);
  }
  return isas;
}

TEST(PanelMatrix, KeepsEveryValueAndPadsTheLastPanelWithZeroRows) {
  const Tensor w = random_normal_tensor(70, 13, 1);
  const PanelMatrix p(w.view());
  EXPECT_EQ(p.rows(), 70);
  EXPECT_EQ(p.cols(), 13);
  ASSERT_EQ(p.panels(), 3);
  EXPECT_EQ(p.bytes(), 70 * 13 * int64_t{sizeof(float)});
  EXPECT_EQ(reinterpret_cast<uintptr_t>(p.panel(0)) % 64, 0u);
  const Tensor back = p.unpacked();
  ASSERT_EQ(back.rows(), 70);
  ASSERT_EQ(back.cols(), 13);
  std::vector<float> row(13);
  for (int64_t i = 0; i < 70; ++i) {
    p.row(i, row.data());
    for (int64_t k = 0; k < 13; ++k) {
      ASSERT_EQ(back.at(i, k), w.at(i, k)) << i << ", " << k;
      ASSERT_EQ(row[k], w.at(i, k)) << i << ", " << k;
    }
  }
  // The last panel's rows 70..95 are zero.
  for (int64_t k = 0; k < 13; ++k) {
    for (int64_t c = 6; c < 32; ++c) ASSERT_EQ(p.panel(2)[k * 32 + c], 0.0f) << k << ", " << c;
  }
}

TEST(PanelMatrix, LinearMatchesTheReferenceForEveryRowCountIsaThreadsAndStride) {
  // 203 columns: odd, and x a column slice of a wider tensor (ld > cols);
  // 130 weight rows: a last panel of 2 and uneven shares of 3 threads; out
  // a column slice too; row counts through every tile height of every
  // instruction set, and 700 rows: past one block of rows (512 KiB of x).
  const Tensor wide = random_normal_tensor(700, 210, 3);
  const Tensor w = random_normal_tensor(130, 203, 4);
  const PanelMatrix packed(w.view());
  const int64_t threads = compute_threads();
  for (const VectorIsa isa : runnable_isas()) {
    for (const int64_t t : {int64_t{1}, int64_t{3}}) {
      set_compute_threads(t);
      for (const int64_t n : {1, 2, 3, 4, 5, 7, 8, 11, 12, 13, 16, 23, 25, 64, 65, 700}) {
        for (const bool accumulate : {false, true}) {
          const ConstView x = wide.view().rows_slice(0, n).cols_slice(5, 203);
          const Tensor start = random_normal_tensor(n, 140, 5);
          Tensor out_wide = start;
          const View out = out_wide.view().cols_slice(7, 130);
          if (isa == widest_vector_isa()) {
            linear(x, packed, out, accumulate);
          } else {
            linear_with(isa, x, packed, out, accumulate);
          }
          for (int64_t i = 0; i < n; ++i) {
            for (int64_t o = 0; o < 140; ++o) {
              if (o < 7 || o >= 137) {
                ASSERT_EQ(out_wide.at(i, o), start.at(i, o)) << "column " << o << " written";
                continue;
              }
              double ref = accumulate ? start.at(i, o) : 0.0;
              for (int64_t k = 0; k < 203; ++k) ref += double(x.row(i)[k]) * w.at(o - 7, k);
              ASSERT_NEAR(out_wide.at(i, o), ref, 2e-5 * (1 + std::abs(ref)))
                  << n << " rows, " << t << " threads, instruction set " << static_cast<int>(isa)
                  << (accumulate ? ", accumulating" : "");
            }
          }
        }
      }
    }
  }
  set_compute_threads(threads);
}

// From 2 MiB up the panels live in their own mapping on a huge page
// boundary: values, copies (a mapping each) and moves behave as below it.
TEST(PanelMatrix, LargeStorageStartsOnAHugePageAndKeepsItsValues) {
  const Tensor w = random_normal_tensor(1000, 600, 2);  // 2.4 MB of values
  const PanelMatrix p(w.view());
  EXPECT_EQ(reinterpret_cast<uintptr_t>(p.panel(0)) % (uintptr_t{2} << 20), 0u);
  PanelMatrix copy = p;
  EXPECT_NE(copy.panel(0), p.panel(0));
  EXPECT_EQ(reinterpret_cast<uintptr_t>(copy.panel(0)) % (uintptr_t{2} << 20), 0u);
  const PanelMatrix moved = std::move(copy);
  for (const PanelMatrix* m : {&p, &moved}) {
    const Tensor back = m->unpacked();
    ASSERT_EQ(back.rows(), 1000);
    ASSERT_EQ(back.cols(), 600);
    for (int64_t i = 0; i < w.size(); ++i) ASSERT_EQ(back.data()[i], w.data()[i]) << i;
  }
  const Tensor x = random_normal_tensor(3, 600, 3);
  Tensor out(3, 1000);
  linear(x.view(), moved, out.view());
  for (int64_t r = 0; r < 3; ++r) {
    for (const int64_t o : {int64_t{0}, int64_t{517}, int64_t{999}}) {
      double expected = 0.0;
      for (int64_t k = 0; k < 600; ++k) expected += double{x.view().row(r)[k]} * w.view().row(o)[k];
      EXPECT_NEAR(out.view().row(r)[o], expected, 1e-3) << r << "," << o;
    }
  }
}

// `w` with every value rounded to binary16 and back.
Tensor rounded_to_half(const Tensor& w) {
  Tensor out = w;
  for (int64_t i = 0; i < out.size(); ++i)
    out.data()[i] = half_to_float(float_to_half(w.data()[i]));
  return out;
}

// binary16 panels hold each value rounded once, and their products are the
// float32 panels' of those values bit for bit, through every instruction
// set, tile height and thread count: the kernels widen a weight exactly and
// compute alike.
TEST(HalfPanelMatrix, ProductsEqualTheFloat32PanelsOfTheRoundedValues) {
  const Tensor w = random_normal_tensor(130, 203, 6);
  const HalfPanelMatrix half(w.view());
  const PanelMatrix rounded(rounded_to_half(w).view());
  EXPECT_EQ(half.bytes(), 130 * 203 * 2);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(half.panel(0)) % 64, 0u);
  const Tensor back = half.unpacked();
  const Tensor want_back = rounded.unpacked();
  for (int64_t i = 0; i < back.size(); ++i) ASSERT_EQ(back.data()[i], want_back.data()[i]) << i;

  const Tensor x = random_normal_tensor(25, 203, 7);
  const int64_t threads = compute_threads();
  for (const VectorIsa isa : runnable_isas()) {
    for (const int64_t t : {int64_t{1}, int64_t{3}}) {
      set_compute_threads(t);
      for (const int64_t n : {1, 2, 5, 8, 12, 13, 25}) {
        const ConstView rows = x.view().rows_slice(0, n);
        Tensor got(n, 130);
        Tensor want(n, 130);
        linear_with(isa, rows, half, got.view());
        linear_with(isa, rows, rounded, want.view());
        for (int64_t i = 0; i < got.size(); ++i) {
          ASSERT_EQ(got.data()[i], want.data()[i])
              << n << " rows, " << t << " threads, instruction set " << static_cast<int>(isa);
        }
      }
    }
  }
  set_compute_threads(threads);
  Tensor got(3, 130);
  Tensor want(3, 130);
  linear(x.view().rows_slice(0, 3), half, got.view());
  linear(x.view().rows_slice(0, 3), rounded, want.view());
  for (int64_t i = 0; i < got.size(); ++i) ASSERT_EQ(got.data()[i], want.data()[i]) << i;
}

TEST(HalfPanelMatrix, AValueBeyondItsRangeIsRefused) {
  Tensor w = random_normal_tensor(4, 6, 8);
  w.at(2, 5) = -70000.0f;
  EXPECT_TRUE(throws_error([&] { HalfPanelMatrix bad(w.view()); }, ErrorKind::kInvalidArgument,
                           {"weight value -70000 at (2, 5) of a (4, 6) matrix",
                            "beyond binary16's range", "--weights f32 or int8"}));
  w.at(2, 5) = 65504.0f;  // the largest binary16 value
  const HalfPanelMatrix largest(w.view());
  std::vector<float> row(6);
  largest.row(2, row.data());
  EXPECT_EQ(row[5], 65504.0f);
}

double bf16_rounded(float v) { return bf16_to_float(float_to_bf16(v)); }

TEST(Bfloat16, RoundsToNearestEvenAndKeepsNaNQuiet) {
  EXPECT_EQ(float_to_bf16(1.0f), 0x3f80);
  EXPECT_EQ(float_to_bf16(std::bit_cast<float>(0x3f808000u)), 0x3f80);  // a tie, down to even
  EXPECT_EQ(float_to_bf16(std::bit_cast<float>(0x3f818000u)), 0x3f82);  // a tie, up to even
  EXPECT_EQ(float_to_bf16(std::bit_cast<float>(0x3f808001u)), 0x3f81);
  EXPECT_EQ(float_to_bf16(-2.0f), 0xc000);
  EXPECT_EQ(float_to_bf16(3.4e38f), 0x7f80);  // past 3.3895e38: inf
  EXPECT_EQ(float_to_bf16(std::bit_cast<float>(0x7f800001u)), 0x7fc0);
  EXPECT_EQ(float_to_bf16(std::bit_cast<float>(0xffc00001u)), 0xffc0);
}

// bfloat16 panels hold each value rounded once, an odd last column paired
// with a zero; their products are those of x rounded to bfloat16 with
// the rounded weights, summed in float32, through every instruction set,
// tile height and thread count.
TEST(Bf16PanelMatrix, ProductsAreThoseOfTheRoundedInputsAndWeights) {
  const Tensor w = random_normal_tensor(130, 203, 9);
  const Bf16PanelMatrix packed(w.view());
  EXPECT_EQ(packed.bytes(), 130 * 203 * 2);
  EXPECT_EQ(packed.steps(), 102);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(packed.panel(0)) % 64, 0u);
  const Tensor back = packed.unpacked();
  for (int64_t i = 0; i < 130; ++i) {
    for (int64_t k = 0; k < 203; ++k) {
      ASSERT_EQ(back.at(i, k), bf16_rounded(w.at(i, k))) << i << ", " << k;
    }
  }
  EXPECT_EQ(static_cast<uint16_t>(packed.panel(0)[Bf16PanelMatrix::offset(3, 203)]), 0)
      << "the odd column's partner is zero";

  const Tensor wide = random_normal_tensor(25, 210, 10);
  const int64_t threads = compute_threads();
  for (const VectorIsa isa : runnable_isas()) {
    for (const int64_t t : {int64_t{1}, int64_t{3}}) {
      set_compute_threads(t);
      for (const int64_t n : {1, 2, 4, 5, 8, 12, 13, 25}) {
        const ConstView x = wide.view().rows_slice(0, n).cols_slice(4, 203);
        Tensor got(n, 130);
        got.at(0, 0) = 1.0f;
        linear_with(isa, x, packed, got.view(), /*accumulate=*/true);
        for (int64_t i = 0; i < n; ++i) {
          for (int64_t o = 0; o < 130; ++o) {
            double ref = i == 0 && o == 0 ? 1.0 : 0.0;
            double magnitude = std::abs(ref);
            for (int64_t k = 0; k < 203; ++k) {
              const double term = bf16_rounded(x.row(i)[k]) * back.at(o, k);
              ref += term;
              magnitude += std::abs(term);
            }
            ASSERT_NEAR(got.at(i, o), ref, 1e-6 * magnitude)
                << n << " rows, " << t << " threads, instruction set " << static_cast<int>(isa)
                << ", (" << i << ", " << o << ")";
          }
        }
      }
    }
  }
  set_compute_threads(threads);
}

// Through an identity matrix each output is its input as the product saw
// it: every instruction set rounds x alike, ties to even included.
TEST(Bf16PanelMatrix, EveryInstructionSetRoundsTheInputAlike) {
  Tensor eye(37, 37);
  for (int64_t i = 0; i < 37; ++i) eye.at(i, i) = 1.0f;
  const Bf16PanelMatrix packed(eye.view());
  Tensor x = random_normal_tensor(3, 37, 11);
  for (int64_t k = 0; k < 37; k += 3) {
    // Halfway between two bfloat16 values, odd and even in turn.
    x.at(1, k) = std::bit_cast<float>((0x3f800000u + (uint32_t(k) << 16)) | 0x8000u);
  }
  for (const VectorIsa isa : runnable_isas()) {
    Tensor out(3, 37);
    linear_with(isa, x.view(), packed, out.view());
    for (int64_t i = 0; i < x.size(); ++i) {
      ASSERT_EQ(out.data()[i], bf16_rounded(x.data()[i]))
          << i << ", instruction set " << static_cast<int>(isa);
    }
  }
}

TEST(Bf16PanelMatrix, AValueBeyondItsRangeIsRefused) {
  Tensor w = random_normal_tensor(4, 6, 12);
  w.at(1, 3) = 3.4e38f;
  EXPECT_TRUE(throws_error(
      [&] { Bf16PanelMatrix bad(w.view()); }, ErrorKind::kInvalidArgument,
      {"at (1, 3) of a (4, 6) matrix", "beyond bfloat16's range", "--weights f32 or int8"}));
}

TEST(PanelMatrix, NoColumnsGiveZeros) {
  const PanelMatrix w(Tensor(3, 0).view());
  const Tensor x(2, 0);
  Tensor out(2, 3);
  out.at(1, 2) = 5.0f;
  linear(x.view(), w, out.view());
  for (int64_t i = 0; i < out.size(); ++i) EXPECT_EQ(out.data()[i], 0.0f);
}

TEST(PanelMatrix, MismatchedShapesAreAnInternalError) {
  const PanelMatrix w(random_normal_tensor(4, 6, 1).view());
  const Tensor x = random_normal_tensor(2, 5, 2);
  Tensor out(2, 4);
  EXPECT_TRUE(throws_error([&] { linear(x.view(), w, out.view()); }, ErrorKind::kInternal,
                           {"linear: x [2, 5] · w [4, 6]ᵀ into [2, 4]"}));
}

}  // namespace
}  // namespace kvrag
