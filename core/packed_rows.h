// Rows of float values kept in the dtype they are stored in (cached K/V:
// f32, IEEE binary16, or int8 with one float32 scale per row), and the two
// kernels attention needs over them, which convert while they compute so
// that no float32 copy of the rows is ever made.
//
// Row layout (the payload layout of a K/V blob, data/kv_blob.h):
//   f32   cols float32
//   f16   cols binary16
//   int8  float32 scale, then cols int8 q (value = q × scale)
// Rows may start at any byte address (an int8 row is 4 + cols bytes).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "core/bytes.h"
#include "core/tensor.h"

namespace kvrag {

enum class KvDtype : uint32_t { kF32 = 0, kF16 = 1, kInt8 = 2 };

// Bytes of one packed row of `cols` values.
size_t packed_row_bytes(KvDtype dtype, int64_t cols);

// A non-owning view of `rows` packed rows of `cols` values; row i starts
// `stride` bytes after row i − 1.
struct PackedRows {
  KvDtype dtype = KvDtype::kF32;
  const uint8_t* data = nullptr;
  int64_t rows = 0;
  int64_t cols = 0;
  size_t stride = 0;  // bytes, >= packed_row_bytes(dtype, cols)

  const uint8_t* row(int64_t i) const { return data + static_cast<size_t>(i) * stride; }
  // Bytes the rows occupy (what reading them all costs).
  int64_t bytes() const { return rows * static_cast<int64_t>(packed_row_bytes(dtype, cols)); }
};

// An f32 view as packed rows (no copy; `view` must outlive the result).
PackedRows packed_view(ConstView view);

// Row `i` of `m` as float32: out[0 .. m.cols).
void unpack_row(const PackedRows& m, int64_t i, float* out);
// The first row of `m` holding a value that is not finite (NaN or ±Inf; an
// int8 row's scale, its int8 values always are), or m.rows when none does:
// the check of every K/V blob read, at memory speed (AVX2 where the CPU
// has it, chosen at run time).
int64_t first_non_finite_row(const PackedRows& m);

// Matrices of one dtype and shape that own their bytes: a K/V blob read
// from the store, kept packed. Moving it keeps the views valid (the bytes
// stay where they are).
struct PackedMatrices {
  Bytes bytes;                       // every matrix's rows, possibly after a header
  std::vector<PackedRows> matrices;  // views into bytes
};

// The kernels of attention over packed rows. A row of `cols` values is
// split into segments = cols / segment runs of `segment` values (the heads
// of a K or V row); `cols` must be a multiple of `segment`.
struct PackedKernels {
  const char* name;  // "portable", "avx2" or "avx512"
  // out[r·segments + s] = Σ_j x[s·segment + j] · row_r[s·segment + j] for
  // every segment s of `count` rows (row r at rows + r·stride): one query's
  // scores against a run of keys, all heads at once.
  void (*segment_dots)(KvDtype dtype, const uint8_t* rows, size_t stride, int64_t count,
                       int64_t cols, const float* x, int64_t segment, float* out);
  // y[s·segment + j] += Σ_r a[r·segments + s] · row_r[s·segment + j], the rows
  // added in order: a run of value rows added to one query's output with each
  // head's attention weights.
  void (*segment_axpy)(KvDtype dtype, const uint8_t* rows, size_t stride, int64_t count,
                       int64_t cols, const float* a, int64_t segment, float* y);
};

// Every kernel set this CPU runs, slowest first: the portable ones, then
// AVX2 + F16C + FMA, then AVX-512 where it has them (asked once, at the
// first call), so that tests and benchmarks can run each.
const std::vector<const PackedKernels*>& packed_kernel_sets();
// The fastest of them.
const PackedKernels& packed_kernels();

}  // namespace kvrag
