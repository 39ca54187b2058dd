#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <tuple>
#include <utility>
#include <vector>

#include "core/crc32c.h"
#include "core/error.h"
#include "core/tensor.h"
#include "data/kv_blob.h"
#include "tests/model_files.h"

namespace kvrag {
namespace {

using testing::throws_error;

// `count` matrices of [rows, cols] with values of both signs over several
// orders of magnitude, a zero and an exact ±127 multiple for int8's edges.
std::vector<Tensor> random_matrices(int count, int64_t rows, int64_t cols, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> mantissa(-1.0f, 1.0f);
  std::uniform_int_distribution<int> exponent(-6, 3);
  std::vector<Tensor> out;
  for (int m = 0; m < count; ++m) {
    Tensor t(rows, cols);
    for (int64_t i = 0; i < rows; ++i) {
      for (int64_t j = 0; j < cols; ++j) t.at(i, j) = std::ldexp(mantissa(rng), exponent(rng));
    }
    t.at(0, 0) = 0.0f;
    out.push_back(std::move(t));
  }
  return out;
}

std::vector<ConstView> views_of(const std::vector<Tensor>& tensors) {
  std::vector<ConstView> views;
  for (const Tensor& t : tensors) views.push_back(t.view());
  return views;
}

// Encodes and decodes, checking the blob size and the decoded shapes.
std::vector<Tensor> round_trip(KvDtype dtype, const std::vector<Tensor>& in) {
  const std::vector<ConstView> views = views_of(in);
  const Bytes blob = encode_kv_blob(dtype, views);
  EXPECT_EQ(blob.size(),
            kv_blob_size(dtype, static_cast<int64_t>(in.size()), in[0].rows(), in[0].cols()));
  std::vector<Tensor> out = decode_kv_blob(blob, "chunk 7");
  EXPECT_EQ(out.size(), in.size());
  for (const Tensor& t : out) {
    EXPECT_EQ(t.rows(), in[0].rows());
    EXPECT_EQ(t.cols(), in[0].cols());
  }
  return out;
}

Bytes sample_blob(KvDtype dtype) {
  const std::vector<Tensor> in = random_matrices(2, 3, 4, 1);
  return encode_kv_blob(dtype, views_of(in));
}

// Rewrites the header's CRC-32C (bytes 24..27) to match the edited blob, as a
// damaged encoder or a forger would.
void fix_checksum(Bytes& blob) {
  uint32_t crc = 0;
  std::memcpy(blob.data() + 24, &crc, sizeof(crc));
  crc = crc32c(blob.data(), blob.size());
  std::memcpy(blob.data() + 24, &crc, sizeof(crc));
}

TEST(KvBlob, F32RoundTripIsExact) {
  const std::vector<Tensor> in = random_matrices(6, 5, 16, 11);
  const std::vector<Tensor> out = round_trip(KvDtype::kF32, in);
  for (size_t m = 0; m < in.size(); ++m) {
    EXPECT_EQ(std::memcmp(in[m].data(), out[m].data(), sizeof(float) * in[m].size()), 0) << m;
  }
}

TEST(KvBlob, F16RoundTripWithinHalfAnUlp) {
  const std::vector<Tensor> in = random_matrices(4, 7, 32, 12);
  const std::vector<Tensor> out = round_trip(KvDtype::kF16, in);
  for (size_t m = 0; m < in.size(); ++m) {
    for (int64_t i = 0; i < in[m].size(); ++i) {
      const float x = in[m].data()[i];
      // binary16 keeps 11 significant bits: rounding error <= 2^-11 relative,
      // or half the subnormal spacing 2^-25 below 2^-14.
      const float bound = std::max(std::abs(x) * std::ldexp(1.0f, -11), std::ldexp(1.0f, -25));
      ASSERT_LE(std::abs(out[m].data()[i] - x), bound) << "matrix " << m << " value " << i;
    }
  }
}

TEST(KvBlob, Int8RoundTripWithinHalfAStepOfItsRow) {
  std::vector<Tensor> in = random_matrices(4, 6, 24, 13);
  in[1].at(2, 5) = -9.5f;  // the row's largest magnitude (others < 8), negative
  for (int64_t j = 0; j < in[2].cols(); ++j) in[2].at(3, j) = 0.0f;  // an all-zero row
  const std::vector<Tensor> out = round_trip(KvDtype::kInt8, in);
  for (size_t m = 0; m < in.size(); ++m) {
    for (int64_t i = 0; i < in[m].rows(); ++i) {
      float max_abs = 0.0f;
      for (int64_t j = 0; j < in[m].cols(); ++j)
        max_abs = std::max(max_abs, std::abs(in[m].at(i, j)));
      // One step is max|row| / 127; rounding to the nearest step errs by at
      // most half of it (plus float rounding of the scale).
      const float bound = max_abs / 254.0f * (1.0f + 1e-5f);
      for (int64_t j = 0; j < in[m].cols(); ++j) {
        ASSERT_LE(std::abs(out[m].at(i, j) - in[m].at(i, j)), bound)
            << "matrix " << m << " row " << i << " col " << j;
      }
    }
  }
  // The row's extreme is ±127 steps: only the float rounding of the scale.
  EXPECT_NEAR(out[1].at(2, 5), -9.5f, 9.5f * 1e-6f);
  for (int64_t j = 0; j < out[2].cols(); ++j) EXPECT_EQ(out[2].at(3, j), 0.0f);
}

TEST(KvBlob, EncodesStridedViews) {
  // A column slice (ld > cols), as attention heads are taken.
  Tensor wide = random_matrices(1, 3, 8, 14)[0];
  const ConstView slice = wide.cview().cols_slice(2, 4);
  const Bytes blob = encode_kv_blob(KvDtype::kF32, std::vector<ConstView>{slice});
  const std::vector<Tensor> out = decode_kv_blob(blob, "slice");
  ASSERT_EQ(out.size(), 1u);
  for (int64_t i = 0; i < 3; ++i) {
    for (int64_t j = 0; j < 4; ++j) EXPECT_EQ(out[0].at(i, j), wide.at(i, j + 2));
  }
}

TEST(KvBlob, UnequalShapesAreRejected) {
  const Tensor a(2, 4);
  const Tensor b(3, 4);
  EXPECT_TRUE(throws_error(
      [&] {
        encode_kv_blob(KvDtype::kF16, std::vector<ConstView>{a.view(), b.view()});
      },
      ErrorKind::kInternal, {"encode_kv_blob: matrices of [2, 4] and [3, 4]"}));
}

TEST(KvBlob, Int8RejectsNonFiniteValuesNamingMatrixAndRow) {
  for (const float bad : {std::nanf(""), INFINITY, -INFINITY}) {
    std::vector<Tensor> m = random_matrices(2, 3, 4, 21);
    m[1].at(2, 3) = bad;
    const std::vector<ConstView> views{m[0].cview(), m[1].cview()};
    EXPECT_TRUE(throws_error([&] { encode_kv_blob(KvDtype::kInt8, views); }, ErrorKind::kInternal,
                             {"matrix 1 row 2 column 3"}))
        << bad;
  }
}

TEST(KvBlob, EveryDtypeRejectsNonFiniteValuesWhenEncoding) {
  for (const KvDtype dtype : {KvDtype::kF32, KvDtype::kF16}) {
    for (const float bad : {std::nanf(""), INFINITY, 1e6f}) {
      if (dtype == KvDtype::kF32 && bad == 1e6f) continue;  // finite in f32
      std::vector<Tensor> m = random_matrices(2, 3, 4, 22);
      m[1].at(2, 3) = bad;
      const std::vector<ConstView> views{m[0].cview(), m[1].cview()};
      EXPECT_TRUE(throws_error([&] { encode_kv_blob(dtype, views); }, ErrorKind::kInternal,
                               {"matrix 1 row 2 column 3"}))
          << kv_dtype_name(dtype) << " " << bad;
    }
  }
}

TEST(KvBlob, AFlippedBitFailsTheChecksum) {
  for (const KvDtype dtype : {KvDtype::kF32, KvDtype::kF16, KvDtype::kInt8}) {
    const Bytes good = sample_blob(dtype);
    for (const size_t at : {size_t{33}, good.size() / 2, good.size() - 1}) {
      Bytes blob = good;
      blob[at] ^= 0x10;
      EXPECT_TRUE(throws_error([&] { decode_kv_blob(blob, "memory of chunk 7"); },
                               ErrorKind::kFormat,
                               {"memory of chunk 7: K/V blob checksum mismatch (stored 0x",
                                "the store is damaged; remove and re-index the document"}))
          << kv_dtype_name(dtype) << " byte " << at;
    }
  }
}

// NaN or Inf written with a valid checksum (by a damaged encoder, or by
// hand) is still refused: the checksum proves the bytes, not the values.
TEST(KvBlob, NonFiniteValuesAreRefusedOnRead) {
  const Bytes good = sample_blob(KvDtype::kF32);
  for (const float bad : {std::nanf(""), INFINITY, -INFINITY}) {
    Bytes blob = good;
    // Matrix 1, row 2, column 3 of 2 × [3, 4] f32 values after the header.
    std::memcpy(blob.data() + 32 + 4 * (12 + 2 * 4 + 3), &bad, sizeof(bad));
    fix_checksum(blob);
    EXPECT_TRUE(throws_error([&] { decode_kv_blob(blob, "memory of chunk 7"); }, ErrorKind::kFormat,
                             {"memory of chunk 7: K/V blob holds ", " at matrix 1 row 2 column 3"}))
        << bad;
  }
}

// The checksum is checked before the values: a NaN that damage wrote is
// reported as damage, with what to do about it, not as a bad value.
TEST(KvBlob, DamageThatWritesANanIsReportedAsDamage) {
  Bytes blob = sample_blob(KvDtype::kF32);
  const float nan = std::nanf("");
  std::memcpy(blob.data() + 32 + 4 * 5, &nan, sizeof(nan));  // matrix 0, row 1, column 1
  EXPECT_TRUE(throws_error([&] { decode_kv_blob(blob, "memory of chunk 7"); }, ErrorKind::kFormat,
                           {"memory of chunk 7: K/V blob checksum mismatch (stored 0x"}));
}

// What fuzzing K/V headers finds: 4 billion matrices of zero rows need no
// payload bytes, and decoding reserved them all.
TEST(KvBlob, AnEmptyShapeIsRefusedBeforeAnyAllocation) {
  for (const auto& [matrices, rows, cols] :
       {std::tuple{0xFFFFFFFFu, 0u, 4u}, std::tuple{0xFFFFFFFFu, 3u, 0u}, std::tuple{0u, 3u, 4u}}) {
    Bytes blob = sample_blob(KvDtype::kF32);
    blob.resize(32);  // the header alone: what a shape of no values needs
    for (const auto& [offset, value] : {std::pair{12, matrices}, {16, rows}, {20, cols}}) {
      std::memcpy(blob.data() + offset, &value, sizeof(value));
    }
    fix_checksum(blob);
    EXPECT_TRUE(throws_error([&] { decode_kv_blob(blob, "memory of chunk 7"); }, ErrorKind::kFormat,
                             {"memory of chunk 7: K/V blob header has an empty shape ("}))
        << matrices << " " << rows << " " << cols;
  }
}

TEST(Crc32c, KnownValues) {
  EXPECT_EQ(crc32c("123456789", 9), 0xE3069283u);
  EXPECT_EQ(crc32c("", 0), 0u);
  const std::string text = "the quick brown fox jumps over the lazy dog, twice over";
  EXPECT_EQ(crc32c(text.data() + 13, text.size() - 13, crc32c(text.data(), 13)),
            crc32c(text.data(), text.size()));
}

// Every path this CPU runs and the table path agree on every length and
// alignment, chained or not.
TEST(Crc32c, EveryPathAgreesWithTheTables) {
  EXPECT_EQ(crc32c_portable("123456789", 9), 0xE3069283u);
  std::vector<uint8_t> bytes(1000);
  for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<uint8_t>(i * 131 + 7);
  for (const Crc32cPath& path : crc32c_paths()) {
    for (const size_t offset : {0, 1, 3}) {
      for (const size_t size : {0, 1, 7, 8, 9, 63, 500, 997}) {
        EXPECT_EQ(path.crc(bytes.data() + offset, size, 0),
                  crc32c_portable(bytes.data() + offset, size))
            << path.name << " " << offset << " " << size;
        EXPECT_EQ(path.crc(bytes.data() + offset, size, 0x12345678u),
                  crc32c_portable(bytes.data() + offset, size, 0x12345678u))
            << path.name;
      }
    }
  }
}

// Past 1 KiB the carry-less path folds 256 and then 64 bytes at a time and
// finishes the rest with crc32; past 4 KiB the SSE 4.2 path runs three
// streams and combines their CRCs: every length around those splits, and
// blob-sized buffers, as the tables do.
TEST(Crc32c, LongBufferPathsAgreeWithTheTables) {
  std::vector<uint8_t> bytes(3 << 20);
  for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<uint8_t>(i * 2654435761u >> 13);
  for (const Crc32cPath& path : crc32c_paths()) {
    for (const size_t from : {size_t{1000}, size_t{1270}, size_t{4090}}) {
      for (size_t size = from; size <= from + 70; ++size) {
        EXPECT_EQ(path.crc(bytes.data() + 1, size, 0x9u),
                  crc32c_portable(bytes.data() + 1, size, 0x9u))
            << path.name << " " << size;
      }
    }
    EXPECT_EQ(path.crc(bytes.data(), bytes.size(), 0), crc32c_portable(bytes.data(), bytes.size()))
        << path.name;
    EXPECT_EQ(path.crc(bytes.data() + 5, 2'359'327, 0xFFFFFFFFu),
              crc32c_portable(bytes.data() + 5, 2'359'327, 0xFFFFFFFFu))
        << path.name;
  }
}

TEST(KvBlob, DtypeNames) {
  for (const KvDtype dtype : {KvDtype::kF32, KvDtype::kF16, KvDtype::kInt8}) {
    EXPECT_EQ(parse_kv_dtype(kv_dtype_name(dtype)), dtype);
  }
  EXPECT_TRUE(throws_error([] { parse_kv_dtype("bf16"); }, ErrorKind::kInvalidArgument,
                           {"unknown K/V dtype 'bf16' (expected f32, f16 or int8)"}));
}

TEST(KvBlob, BadMagicIsAFormatError) {
  Bytes blob = sample_blob(KvDtype::kF16);
  blob[0] = 'X';
  EXPECT_TRUE(throws_error([&] { decode_kv_blob(blob, "chunk 7"); }, ErrorKind::kFormat,
                           {"chunk 7: not a kvrag K/V blob (bad magic)"}));
}

TEST(KvBlob, OtherFormatVersionSaysWhatToDo) {
  Bytes blob = sample_blob(KvDtype::kF16);
  // Version 1 is the format before checksums: refused, not read as legacy.
  for (const uint32_t version : {1u, 3u}) {
    std::memcpy(blob.data() + 4, &version, sizeof(version));
    EXPECT_TRUE(throws_error([&] { decode_kv_blob(blob, "chunk 7"); }, ErrorKind::kFormat,
                             {str_cat("chunk 7: K/V blob format version ", version,
                                      ", this build reads version 2; rebuild the index with this "
                                      "version of kvrag")}));
  }
}

TEST(KvBlob, UnknownDtypeIsAFormatError) {
  Bytes blob = sample_blob(KvDtype::kF32);
  const uint32_t dtype = 9;
  std::memcpy(blob.data() + 8, &dtype, sizeof(dtype));
  EXPECT_TRUE(throws_error([&] { decode_kv_blob(blob, "chunk 7"); }, ErrorKind::kFormat,
                           {"chunk 7: unknown K/V dtype code 9"}));
}

TEST(KvBlob, TruncatedBlobIsAFormatError) {
  Bytes blob = sample_blob(KvDtype::kInt8);
  // 2 matrices × 3 rows × (4 bytes of scale + 4 values) after 32 header bytes.
  ASSERT_EQ(blob.size(), 32u + 2 * 3 * 8);
  blob.pop_back();
  EXPECT_TRUE(
      throws_error([&] { decode_kv_blob(blob, "chunk 7"); }, ErrorKind::kFormat,
                   {"chunk 7: K/V blob has 79 bytes, its header (2 × [3, 4] int8) needs 80"}));
  blob.resize(10);
  EXPECT_TRUE(throws_error([&] { decode_kv_blob(blob, "chunk 7"); }, ErrorKind::kFormat,
                           {"chunk 7: K/V blob of 10 bytes is shorter than its header"}));
}

TEST(KvBlob, TrailingBytesAreAFormatError) {
  Bytes blob = sample_blob(KvDtype::kF32);
  blob.push_back(0);
  EXPECT_TRUE(throws_error([&] { decode_kv_blob(blob, "chunk 7"); }, ErrorKind::kFormat,
                           {"K/V blob has 129 bytes", "needs 128"}));
}

TEST(KvBlob, HeaderWithOverflowingSizesIsAFormatError) {
  Bytes blob = sample_blob(KvDtype::kF32);
  const uint32_t huge = 0xffffffffu;
  for (const size_t offset : {12, 16, 20}) std::memcpy(blob.data() + offset, &huge, sizeof(huge));
  EXPECT_TRUE(throws_error([&] { decode_kv_blob(blob, "chunk 7"); }, ErrorKind::kFormat,
                           {"chunk 7: K/V blob has 128 bytes"}));
}

}  // namespace
}  // namespace kvrag
