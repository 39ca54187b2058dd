// A linear layer's weight (out, in) in the layout its products read
// (float32, or binary16 widened as it is read): panels of kPanelRows output
// rows, each panel stored input column by input column (w[32p + c][k] at
// panel p, offset k · 32 + c), rows past `out` zero. A product reads the
// whole matrix front to back as one stream, which the hardware prefetcher
// follows, and its kernel multiplies one x value into 32 outputs at a time,
// so it needs no horizontal sums: where row-major tiles (six weight rows ×
// four x rows) read each weight row in six parallel streams and summed
// every dot product across its lanes, and OpenBLAS's sgemm packed its
// operands on every call. Through T5-base's
// gated wi (6144, 768) on two threads (bench/micro_t5.cpp, medians of 5):
// 16 rows 0.46 ms (row-major tiles 0.85, sgemm 1.53), 1,024 rows 28.5 ms
// (sgemm 53.4); one row through (65536, 1024) at 50 GB/s, as fast as two
// threads of cblas_sgemv were. BM_Encoder/t5-base/16, a question: 17.9-24 →
// 12.4 ms.
#pragma once

#include <cstdint>
#include <type_traits>
#include <vector>

#include "core/tensor.h"

namespace kvrag {

// The instruction sets linear's kernels are built for, each a superset of
// the one before: kAvx512Bf16 adds AVX512-BF16's bfloat16 dot products,
// which bfloat16 panels use (float32 and binary16 ones take kAvx512's
// kernels there).
enum class VectorIsa { kPortable, kAvx2, kAvx512, kAvx512Bf16 };
// The widest of them this CPU runs: what linear uses.
VectorIsa widest_vector_isa();

// A bfloat16 value's bits: float32's top half.
enum class Bfloat16 : uint16_t {};

// Values of type T: float, or binary16 bits (uint16_t) for `--weights f16`,
// the same layout in half the bytes, widened to float32 as the kernels load
// them: the products of a checkpoint stored in F16 are then the float32
// ones, bit for bit, at half the bytes streamed.
//
// Or Bfloat16 for `--weights bf16`: as many bytes as binary16, but a
// product rounds x to bfloat16 too and multiplies pairs of input columns
// in one instruction (AVX512-BF16's VDPBF16PS, float32 sums), twice the
// multiply-adds a cycle of float32 FMA on the same CPU, for products of
// many rows (indexing, long prompts; a question's few rows gain less, as
// reading their weights takes about as long as the arithmetic). So a panel
// holds its input columns in pairs: w[32p + c][2j + b] at offset
// j · 64 + 2c + b, and an odd last column pairs with a zero. CPUs without
// the instruction widen both to float32 and sum the same products.
template <typename T>
class BasicPanelMatrix {
 public:
  static constexpr int64_t kPanelRows = 32;

  BasicPanelMatrix() = default;
  // w (out, in) rearranged into panels. binary16 and bfloat16:
  // Error(kInvalidArgument) naming the first value beyond its range
  // (±65504; ±3.39e38), which would be ±inf. A float32 subnormal stays a
  // bfloat16 subnormal, which AVX512-BF16's products read as zero.
  explicit BasicPanelMatrix(ConstView w);

  // Input columns a product takes in one step: a bfloat16 pair, else one.
  static constexpr int64_t kColumnStep = std::is_same_v<T, Bfloat16> ? 2 : 1;

  int64_t rows() const { return rows_; }
  int64_t cols() const { return cols_; }
  // Steps a product takes through a panel: cols() / kColumnStep, rounded up.
  int64_t steps() const { return (cols_ + kColumnStep - 1) / kColumnStep; }
  int64_t panels() const { return (rows_ + kPanelRows - 1) / kPanelRows; }
  // Bytes of its values. A product also reads the zero rows that pad the
  // last panel (fewer than kPanelRows; none in T5's shapes), which a
  // memory bound counted from these leaves out.
  int64_t bytes() const { return rows_ * cols_ * int64_t{sizeof(T)}; }
  // Values in a panel: steps() × kColumnStep × kPanelRows.
  int64_t panel_values() const { return steps() * kColumnStep * kPanelRows; }
  // Panel p's panel_values() values, 64-byte aligned.
  const T* panel(int64_t p) const { return values_.data() + p * panel_values(); }
  // Where w[32p + c][k] lies in panel p.
  static int64_t offset(int64_t c, int64_t k) {
    return (k / kColumnStep) * kColumnStep * kPanelRows + c * kColumnStep + k % kColumnStep;
  }

  // Row i as float32 (out[0 .. cols())): a token's embedding.
  void row(int64_t i, float* out) const;
  // The (out, in) matrix it was made from (binary16: its rounded values).
  Tensor unpacked() const;

 private:
  // Storage aligned to a cache line, so that a vector load of a panel never
  // splits one, and from 2 MiB up its own mapping on a huge page boundary,
  // which the kernel is asked to back with transparent huge pages: fresh
  // 4 KiB pages cost a fault each (T5-base's 1 GB of them took seconds to
  // load on a VM), and a stream over them is slower when other work has
  // run since (see map_huge_aligned).
  struct PanelAllocator {
    using value_type = T;
    template <typename>
    struct rebind {
      using other = PanelAllocator;
    };
    T* allocate(size_t n);
    void deallocate(T* p, size_t n);
    bool operator==(const PanelAllocator&) const { return true; }
  };

  int64_t rows_ = 0;
  int64_t cols_ = 0;
  std::vector<T, PanelAllocator> values_;
};

using PanelMatrix = BasicPanelMatrix<float>;
using HalfPanelMatrix = BasicPanelMatrix<uint16_t>;
using Bf16PanelMatrix = BasicPanelMatrix<Bfloat16>;

// out = x · wᵀ: a PyTorch nn.Linear without bias. x: [n, in], out: [n, out];
// views may be strided. With accumulate, adds to out instead of overwriting
// it. Each thread of compute_threads() takes a run of panels and streams
// them once for up to a few hundred rows of x (more: once per block of
// them), kernel tiles of up to 12 rows (AVX-512; 6 with AVX2) at a time.
// Through bfloat16 panels x is rounded to bfloat16 first (float_to_bf16).
void linear(ConstView x, const PanelMatrix& w, View out, bool accumulate = false);
void linear(ConstView x, const HalfPanelMatrix& w, View out, bool accumulate = false);
void linear(ConstView x, const Bf16PanelMatrix& w, View out, bool accumulate = false);
// linear through a given instruction set (tests and benchmarks compare
// them); it must not be wider than widest_vector_isa().
void linear_with(VectorIsa isa, ConstView x, const PanelMatrix& w, View out,
                 bool accumulate = false);
void linear_with(VectorIsa isa, ConstView x, const HalfPanelMatrix& w, View out,
                 bool accumulate = false);
void linear_with(VectorIsa isa, ConstView x, const Bf16PanelMatrix& w, View out,
                 bool accumulate = false);

}  // namespace kvrag
