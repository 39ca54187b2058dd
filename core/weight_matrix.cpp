#include "core/weight_matrix.h"

#include "core/enum_names.h"
#include "core/error.h"

namespace kvrag {
namespace {

constexpr const char* kWeightDtypeNames[] = {"f32", "int8"};

}  // namespace

const char* weight_dtype_name(WeightDtype dtype) {
  return kWeightDtypeNames[static_cast<int>(dtype)];
}

WeightDtype parse_weight_dtype(const std::string& name) {
  return parse_enum<WeightDtype>(name, kWeightDtypeNames, "weight dtype");
}

WeightMatrix::WeightMatrix(const Tensor& w, WeightDtype dtype) : dtype_(dtype) {
  if (dtype == WeightDtype::kInt8) {
    int8_ = quantize_int8(w.view());
  } else {
    f32_ = PanelMatrix(w.view());
  }
}

int64_t WeightMatrix::bytes() const {
  return dtype_ == WeightDtype::kInt8 ? int8_.bytes() : f32_.bytes();
}

const PanelMatrix& WeightMatrix::f32() const {
  KVRAG_CHECK(dtype_ == WeightDtype::kF32, kInternal, "float32 values of an int8 weight asked for");
  return f32_;
}

const Int8Matrix& WeightMatrix::int8() const {
  KVRAG_CHECK(dtype_ == WeightDtype::kInt8, kInternal, "int8 values of a float32 weight asked for");
  return int8_;
}

void WeightMatrix::row_f32(int64_t i, float* out) const {
  if (dtype_ == WeightDtype::kInt8) {
    dequantize_rows(int8_, i, View{out, 1, int8_.cols, int8_.cols});
  } else {
    f32_.row(i, out);
  }
}

void linear(ConstView x, const WeightMatrix& w, View out, bool accumulate) {
  if (w.dtype() == WeightDtype::kInt8) {
    linear(x, w.int8(), out, accumulate);
  } else {
    linear(x, w.f32(), out, accumulate);
  }
}

}  // namespace kvrag
