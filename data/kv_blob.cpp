#include "data/kv_blob.h"

#include <cmath>
#include <cstdint>
#include <cstring>

#include "core/crc32c.h"
#include "core/error.h"
#include "core/format.h"
#include "core/half.h"
#include "core/int8_matrix.h"

namespace kvrag {
namespace {

constexpr char kMagic[4] = {'K', 'V', 'B', '1'};
// Version 2 added the checksum; version 1 blobs are not read (see
// decode_kv_blob): an index that holds them was built by a kvrag whose model
// fingerprint did not cover the tokenizer, so it cannot be opened anyway.
constexpr uint32_t kVersion = 2;

struct Header {
  char magic[4];
  uint32_t version;
  uint32_t dtype;
  uint32_t matrices;
  uint32_t rows;
  uint32_t cols;
  uint32_t crc;       // CRC-32C of the header (this field 0) and the payload
  uint32_t reserved;  // 0; keeps the payload 8-byte aligned
};
static_assert(sizeof(Header) == 32);

// The checksum a blob's header should hold: CRC-32C over the header with
// its crc field zeroed, then the payload.
uint32_t blob_crc(Header header, std::span<const uint8_t> payload) {
  header.crc = 0;
  return crc32c(payload.data(), payload.size(), crc32c(&header, sizeof(header)));
}

// The position of value `index` of a blob's payload, for error messages.
std::string value_position(int64_t index, int64_t rows, int64_t cols) {
  return str_cat("matrix ", index / (rows * cols), " row ", (index / cols) % rows, " column ",
                 index % cols);
}

// Bytes after the header; SIZE_MAX when the product overflows, which a
// corrupted header can ask for and no real blob has.
size_t payload_size(KvDtype dtype, int64_t matrices, int64_t rows, int64_t cols) {
  size_t row_count = 0;
  size_t values = 0;
  if (__builtin_mul_overflow(static_cast<size_t>(matrices), static_cast<size_t>(rows),
                             &row_count) ||
      __builtin_mul_overflow(row_count, static_cast<size_t>(cols), &values)) {
    return SIZE_MAX;
  }
  size_t bytes = 0;
  switch (dtype) {
    case KvDtype::kF32:
      return __builtin_mul_overflow(values, size_t{4}, &bytes) ? SIZE_MAX : bytes;
    case KvDtype::kF16:
      return __builtin_mul_overflow(values, size_t{2}, &bytes) ? SIZE_MAX : bytes;
    case KvDtype::kInt8:
      return __builtin_mul_overflow(row_count, sizeof(float), &bytes) ||
                     __builtin_add_overflow(bytes, values, &bytes)
                 ? SIZE_MAX
                 : bytes;
  }
  return SIZE_MAX;
}

std::string hex32(uint32_t value) {
  static const char kDigits[] = "0123456789abcdef";
  std::string text = "0x00000000";
  for (int i = 9; i >= 2; --i, value >>= 4) text[i] = kDigits[value & 0xF];
  return text;
}

// Refuses a matrix holding NaN or Inf, naming the first such value. A
// checksum only proves the bytes are those written; NaN or Inf would still
// reach an answer as NaN attention.
void check_finite(const PackedRows& m, int64_t index, const std::string& what) {
  const int64_t first = first_non_finite_row(m);
  if (first == m.rows) return;
  std::vector<float> values(static_cast<size_t>(m.cols));
  for (int64_t i = first; i < m.rows; ++i) {
    unpack_row(m, i, values.data());
    for (int64_t j = 0; j < m.cols; ++j) {
      KVRAG_CHECK(std::isfinite(values[j]), kFormat, what, ": K/V blob holds ", values[j], " at ",
                  value_position((index * m.rows + i) * m.cols + j, m.rows, m.cols),
                  "; the store is damaged: remove and re-index the document");
    }
  }
}

// Views of a blob's matrices after every check: header, size, checksum and
// values (see decode_kv_blob).
std::vector<PackedRows> checked_matrices(std::span<const uint8_t> blob, const std::string& what) {
  Header header{};
  KVRAG_CHECK(blob.size() >= sizeof(header), kFormat, what, ": K/V blob of ", blob.size(),
              " bytes is shorter than its header");
  std::memcpy(&header, blob.data(), sizeof(header));
  KVRAG_CHECK(std::memcmp(header.magic, kMagic, 4) == 0, kFormat, what,
              ": not a kvrag K/V blob (bad magic)");
  KVRAG_CHECK(header.version == kVersion, kFormat, what, ": K/V blob format version ",
              header.version, ", this build reads version ", kVersion,
              "; rebuild the index with this version of kvrag (index the documents into a new "
              "folder)");
  KVRAG_CHECK(header.dtype <= static_cast<uint32_t>(KvDtype::kInt8), kFormat, what,
              ": unknown K/V dtype code ", header.dtype);
  const auto dtype = static_cast<KvDtype>(header.dtype);
  const int64_t rows = header.rows;
  const int64_t cols = header.cols;
  // Every stored memory has a matrix, a token and a column; an empty shape
  // would also let a header claim billions of matrices of zero bytes.
  KVRAG_CHECK(header.matrices > 0 && rows > 0 && cols > 0, kFormat, what,
              ": K/V blob header has an empty shape (", header.matrices, " × [", rows, ", ", cols,
              "])");
  const size_t expected = kv_blob_size(dtype, header.matrices, rows, cols);
  KVRAG_CHECK(blob.size() == expected, kFormat, what, ": K/V blob has ", blob.size(),
              " bytes, its header (", header.matrices, " × [", rows, ", ", cols, "] ",
              kv_dtype_name(dtype), ") needs ", expected);
  const std::span<const uint8_t> payload = blob.subspan(sizeof(header));
  const uint32_t crc = blob_crc(header, payload);
  KVRAG_CHECK(crc == header.crc, kFormat, what, ": K/V blob checksum mismatch (stored ",
              hex32(header.crc), ", computed ", hex32(crc),
              "): the store is damaged; remove and re-index the document");
  const size_t row_bytes = packed_row_bytes(dtype, cols);
  std::vector<PackedRows> matrices;
  matrices.reserve(header.matrices);
  for (uint32_t m = 0; m < header.matrices; ++m) {
    matrices.push_back(
        PackedRows{dtype, payload.data() + m * rows * row_bytes, rows, cols, row_bytes});
    check_finite(matrices.back(), m, what);
  }
  return matrices;
}

}  // namespace

const char* kv_dtype_name(KvDtype dtype) {
  switch (dtype) {
    case KvDtype::kF32:
      return "f32";
    case KvDtype::kF16:
      return "f16";
    case KvDtype::kInt8:
      return "int8";
  }
  return "?";
}

KvDtype parse_kv_dtype(const std::string& name) {
  if (name == "f32") return KvDtype::kF32;
  if (name == "f16") return KvDtype::kF16;
  if (name == "int8") return KvDtype::kInt8;
  KVRAG_THROW(kInvalidArgument, "unknown K/V dtype '", name, "' (expected f32, f16 or int8)");
}

size_t kv_blob_size(KvDtype dtype, int64_t matrices, int64_t rows, int64_t cols) {
  const size_t payload = payload_size(dtype, matrices, rows, cols);
  return payload > SIZE_MAX - sizeof(Header) ? SIZE_MAX : sizeof(Header) + payload;
}

Bytes encode_kv_blob(KvDtype dtype, std::span<const ConstView> matrices) {
  KVRAG_CHECK(!matrices.empty(), kInternal, "encode_kv_blob: no matrices");
  const int64_t rows = matrices.front().rows;
  const int64_t cols = matrices.front().cols;
  for (const ConstView& m : matrices) {
    KVRAG_CHECK(m.rows == rows && m.cols == cols, kInternal, "encode_kv_blob: matrices of [", rows,
                ", ", cols, "] and [", m.rows, ", ", m.cols, "]");
  }
  Bytes blob(kv_blob_size(dtype, static_cast<int64_t>(matrices.size()), rows, cols));
  Header header{};
  std::memcpy(header.magic, kMagic, 4);
  header.version = kVersion;
  header.dtype = static_cast<uint32_t>(dtype);
  header.matrices = static_cast<uint32_t>(matrices.size());
  header.rows = static_cast<uint32_t>(rows);
  header.cols = static_cast<uint32_t>(cols);
  std::memcpy(blob.data(), &header, sizeof(header));
  uint8_t* out = blob.data() + sizeof(header);
  for (size_t mi = 0; mi < matrices.size(); ++mi) {
    const ConstView& m = matrices[mi];
    for (int64_t i = 0; i < rows; ++i) {
      const float* row = m.row(i);
      if (dtype == KvDtype::kF32) {
        for (int64_t j = 0; j < cols; ++j) {
          KVRAG_CHECK(std::isfinite(row[j]), kInternal, "encode_kv_blob: matrix ", mi, " row ", i,
                      " column ", j, " holds ", row[j], ", which a K/V blob cannot hold");
        }
        std::memcpy(out, row, sizeof(float) * cols);
        out += sizeof(float) * cols;
      } else if (dtype == KvDtype::kF16) {
        for (int64_t j = 0; j < cols; ++j) {
          // A finite float beyond f16's range (65504) would become Inf.
          const uint16_t h = float_to_half(row[j]);
          KVRAG_CHECK(std::isfinite(half_to_float(h)), kInternal, "encode_kv_blob: matrix ", mi,
                      " row ", i, " column ", j, " holds ", row[j], ", which f16 cannot encode");
          std::memcpy(out, &h, 2);
          out += 2;
        }
      } else {
        // Rejected, not clamped: a NaN or Inf here means the encoder went
        // wrong, and a clamped copy would be cached and served as if valid
        // (casting NaN to int8 is undefined behaviour besides).
        for (int64_t j = 0; j < cols; ++j) {
          KVRAG_CHECK(std::isfinite(row[j]), kInternal, "encode_kv_blob: matrix ", mi, " row ", i,
                      " column ", j, " holds ", row[j], ", which int8 cannot encode");
        }
        const float scale = quantize_row(row, cols, reinterpret_cast<int8_t*>(out + sizeof(float)));
        std::memcpy(out, &scale, sizeof(float));
        out += sizeof(float) + cols;
      }
    }
  }
  header.crc = blob_crc(header, std::span<const uint8_t>(blob).subspan(sizeof(header)));
  std::memcpy(blob.data(), &header, sizeof(header));
  return blob;
}

std::vector<Tensor> decode_kv_blob(std::span<const uint8_t> blob, const std::string& what) {
  const std::vector<PackedRows> matrices = checked_matrices(blob, what);
  std::vector<Tensor> out;
  out.reserve(matrices.size());
  for (const PackedRows& m : matrices) {
    Tensor t(m.rows, m.cols);
    for (int64_t i = 0; i < m.rows; ++i) unpack_row(m, i, t.row(i));
    out.push_back(std::move(t));
  }
  return out;
}

PackedMatrices read_kv_blob(Bytes blob, const std::string& what) {
  PackedMatrices out;
  out.matrices = checked_matrices(blob, what);
  out.bytes = std::move(blob);  // the views stay valid: a moved vector keeps its buffer
  return out;
}

}  // namespace kvrag
