// A linear layer's weight, (out, in) as PyTorch stores it, held in
// float32, binary16 or bfloat16, in the panels its products stream
// (core/panel_matrix.h), or in int8 with per-row scales
// (core/int8_matrix.h): which one is chosen when a model is loaded
// (`--weights f32|f16|bf16|int8`), and every product goes through linear(x,
// WeightMatrix, …), so that the layers do not care. f16 halves the bytes a
// product streams and computes in float32: exact for a checkpoint stored
// in F16, one rounding of each weight otherwise. bf16 streams as few bytes
// and also rounds each product's input to bfloat16, for dot products at
// twice float32's rate where the CPU has AVX512-BF16: products of many rows
// (indexing, long prompts) in little more than half the time.
#pragma once

#include <cstdint>
#include <string>

#include "core/int8_matrix.h"
#include "core/panel_matrix.h"
#include "core/tensor.h"

namespace kvrag {

enum class WeightDtype { kF32 = 0, kInt8 = 1, kF16 = 2, kBf16 = 3 };
const char* weight_dtype_name(WeightDtype dtype);  // "f32" | "int8" | "f16" | "bf16"
// Error(kInvalidArgument) "unknown weight dtype 'x' (expected f32, int8, f16, bf16)".
WeightDtype parse_weight_dtype(const std::string& name);

class WeightMatrix {
 public:
  WeightMatrix() = default;
  // `w` in `dtype`: kInt8 quantises it, kF16 and kBf16 round it (each
  // drops the float32 values); kF16 and kBf16 are Error(kInvalidArgument)
  // for a value beyond their range.
  explicit WeightMatrix(const Tensor& w, WeightDtype dtype = WeightDtype::kF32);

  WeightDtype dtype() const { return dtype_; }
  int64_t rows() const;
  int64_t cols() const;
  // Bytes a product reads (int8: values and scales).
  int64_t bytes() const;

  // The values in their own dtype; asking for another one is Error(kInternal).
  const PanelMatrix& f32() const;
  const HalfPanelMatrix& f16() const;
  const Bf16PanelMatrix& bf16() const;
  const Int8Matrix& int8() const;

  // Row i as float32 into out[0 .. cols()): a token's embedding.
  void row_f32(int64_t i, float* out) const;

  // f(the values in their own dtype's matrix): what each product and
  // query above dispatches through.
  template <typename F>
  decltype(auto) visit(F&& f) const {
    switch (dtype_) {
      case WeightDtype::kF16:
        return f(f16_);
      case WeightDtype::kBf16:
        return f(bf16_);
      case WeightDtype::kInt8:
        return f(int8_);
      case WeightDtype::kF32:
        break;
    }
    return f(f32_);
  }

 private:
  WeightDtype dtype_ = WeightDtype::kF32;
  PanelMatrix f32_;       // (rows, cols) when kF32
  HalfPanelMatrix f16_;   // when kF16
  Bf16PanelMatrix bf16_;  // when kBf16
  Int8Matrix int8_;       // when kInt8
};

// out = x · wᵀ (out += … with accumulate) in w's dtype: x: (n, w.cols()),
// out: (n, w.rows()). See linear(ConstView, const PanelMatrix&, …) in core/panel_matrix.h and
// linear(ConstView, const Int8Matrix&, …) in core/int8_matrix.h.
void linear(ConstView x, const WeightMatrix& w, View out, bool accumulate = false);

}  // namespace kvrag
