// The binary layout of a chunk's cached memory in the store: a list of
// equal-shape float matrices (per decoder layer K then V, or the encoder
// output alone) in f32, f16 or int8 with a per-row scale.
//
// Layout, little-endian:
//   header  "KVB1" magic, u32 format version (2), u32 dtype, u32 matrices,
//           u32 rows (tokens), u32 cols (inner_dim or d_model), u32 CRC-32C
//           of the header (with this field 0) and the payload, u32 0
//   f32     matrices × rows × cols float32
//   f16     matrices × rows × cols binary16
//   int8    per row of every matrix: float32 scale, then cols int8 values
//           (value = q × scale, scale = max |row| / 127)
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "core/bytes.h"
#include "core/packed_rows.h"
#include "core/tensor.h"

namespace kvrag {

const char* kv_dtype_name(KvDtype dtype);
// "f32", "f16" or "int8"; anything else is Error(kInvalidArgument).
KvDtype parse_kv_dtype(const std::string& name);

// Bytes of the blob for `matrices` matrices of (rows, cols); SIZE_MAX when
// that does not fit in size_t.
size_t kv_blob_size(KvDtype dtype, int64_t matrices, int64_t rows, int64_t cols);

// Encodes matrices of one shape; Error(kInternal) for unequal shapes or a
// NaN/Inf value (or one f16 cannot hold), naming matrix, row and column.
Bytes encode_kv_blob(KvDtype dtype, std::span<const ConstView> matrices);

// Decodes a blob into float32 matrices. Error(kFormat) for a bad magic, a
// format version this build does not read (version 1, which had no
// checksum, included: "rebuild the index"), an unknown dtype, a size that
// disagrees with the header, a checksum that does not match, or a NaN/Inf
// value; `what` names the blob in the message ("memory of chunk 12").
std::vector<Tensor> decode_kv_blob(std::span<const uint8_t> blob, const std::string& what);

// The blob's matrices kept in its dtype, after the same checks as
// decode_kv_blob: views into `blob`, which the result takes over (no copy).
PackedMatrices read_kv_blob(Bytes blob, const std::string& what);

}  // namespace kvrag
