#include "core/weight_matrix.h"

#include "core/enum_names.h"
#include "core/error.h"

namespace kvrag {
namespace {

constexpr const char* kWeightDtypeNames[] = {"f32", "int8", "f16", "bf16"};

// What the panel matrices answer by member functions an Int8Matrix holds
// as fields, or by a product's helper.
template <typename Panels>
int64_t rows_of(const Panels& m) {
  return m.rows();
}
int64_t rows_of(const Int8Matrix& m) { return m.rows; }

template <typename Panels>
int64_t cols_of(const Panels& m) {
  return m.cols();
}
int64_t cols_of(const Int8Matrix& m) { return m.cols; }

template <typename Panels>
void row_of(const Panels& m, int64_t i, float* out) {
  m.row(i, out);
}
void row_of(const Int8Matrix& m, int64_t i, float* out) {
  dequantize_rows(m, i, View{out, 1, m.cols, m.cols});
}

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
  return visit([](const auto& m) { return rows_of(m); });
}

int64_t WeightMatrix::cols() const {
  return visit([](const auto& m) { return cols_of(m); });
}

int64_t WeightMatrix::bytes() const {
  return visit([](const auto& m) { return m.bytes(); });
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
  visit([&](const auto& m) { row_of(m, i, out); });
}

void linear(ConstView x, const WeightMatrix& w, View out, bool accumulate) {
  w.visit([&](const auto& m) { linear(x, m, out, accumulate); });
}

}  // namespace kvrag
