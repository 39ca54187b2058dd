#include "core/weight_matrix.h"

#include "core/enum_names.h"
#include "core/error.h"

namespace kvrag {
namespace {

constexpr const char* kWeightDtypeNames[] = {"f32", "int8", "f16", "bf16"};

}  // namespace

const char* weight_dtype_name(WeightDtype dtype) {
  return kWeightDtypeNames[static_cast<int>(dtype)];
}

WeightDtype parse_weight_dtype(const std::string& name) {
  return parse_enum<WeightDtype>(name, kWeightDtypeNames, "weight dtype");
}

WeightMatrix::WeightMatrix(const Tensor& w, WeightDtype dtype) : dtype_(dtype) {
  switch (dtype) {
    case WeightDtype::kF32:
      f32_ = PanelMatrix(w.view());
      return;
    case WeightDtype::kF16:
      f16_ = HalfPanelMatrix(w.view());
      return;
    case WeightDtype::kBf16:
      bf16_ = Bf16PanelMatrix(w.view());
      return;
    case WeightDtype::kInt8:
      int8_ = quantize_int8(w.view());
      return;
  }
}

int64_t WeightMatrix::rows() const {
  switch (dtype_) {
    case WeightDtype::kF32:
      return f32_.rows();
    case WeightDtype::kF16:
      return f16_.rows();
    case WeightDtype::kBf16:
      return bf16_.rows();
    case WeightDtype::kInt8:
      return int8_.rows;
  }
  return 0;
}

int64_t WeightMatrix::cols() const {
  switch (dtype_) {
    case WeightDtype::kF32:
      return f32_.cols();
    case WeightDtype::kF16:
      return f16_.cols();
    case WeightDtype::kBf16:
      return bf16_.cols();
    case WeightDtype::kInt8:
      return int8_.cols;
  }
  return 0;
}

int64_t WeightMatrix::bytes() const {
  switch (dtype_) {
    case WeightDtype::kF32:
      return f32_.bytes();
    case WeightDtype::kF16:
      return f16_.bytes();
    case WeightDtype::kBf16:
      return bf16_.bytes();
    case WeightDtype::kInt8:
      return int8_.bytes();
  }
  return 0;
}

const PanelMatrix& WeightMatrix::f32() const {
  KVRAG_CHECK(dtype_ == WeightDtype::kF32, kInternal, "float32 values asked of a weight held in ",
              weight_dtype_name(dtype_));
  return f32_;
}

const HalfPanelMatrix& WeightMatrix::f16() const {
  KVRAG_CHECK(dtype_ == WeightDtype::kF16, kInternal, "binary16 values asked of a weight held in ",
              weight_dtype_name(dtype_));
  return f16_;
}

const Bf16PanelMatrix& WeightMatrix::bf16() const {
  KVRAG_CHECK(dtype_ == WeightDtype::kBf16, kInternal, "bfloat16 values asked of a weight held in ",
              weight_dtype_name(dtype_));
  return bf16_;
}

const Int8Matrix& WeightMatrix::int8() const {
  KVRAG_CHECK(dtype_ == WeightDtype::kInt8, kInternal, "int8 values asked of a weight held in ",
              weight_dtype_name(dtype_));
  return int8_;
}

void WeightMatrix::row_f32(int64_t i, float* out) const {
  switch (dtype_) {
    case WeightDtype::kF32:
      return f32_.row(i, out);
    case WeightDtype::kF16:
      return f16_.row(i, out);
    case WeightDtype::kBf16:
      return bf16_.row(i, out);
    case WeightDtype::kInt8:
      return dequantize_rows(int8_, i, View{out, 1, int8_.cols, int8_.cols});
  }
}

void linear(ConstView x, const WeightMatrix& w, View out, bool accumulate) {
  switch (w.dtype()) {
    case WeightDtype::kF32:
      return linear(x, w.f32(), out, accumulate);
    case WeightDtype::kF16:
      return linear(x, w.f16(), out, accumulate);
    case WeightDtype::kBf16:
      return linear(x, w.bf16(), out, accumulate);
    case WeightDtype::kInt8:
      return linear(x, w.int8(), out, accumulate);
  }
}

}  // namespace kvrag
