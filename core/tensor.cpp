#include "core/tensor.h"

#include <algorithm>
#include <cstring>

#include "core/error.h"

namespace kvrag {

Tensor::Tensor(int64_t rows, int64_t cols, std::vector<float> data)
    : data_(std::move(data)), rows_(rows), cols_(cols) {
  KVRAG_CHECK(static_cast<int64_t>(data_.size()) == rows * cols, kInternal, "tensor data has ",
              data_.size(), " values, shape [", rows, ", ", cols, "] needs ", rows * cols);
}

void Tensor::resize_rows(int64_t rows) {
  data_.resize(static_cast<size_t>(rows * cols_), 0.0f);
  rows_ = rows;
}

void Tensor::append_rows(ConstView other) {
  if (other.rows == 0) return;
  if (rows_ == 0 && cols_ == 0) cols_ = other.cols;
  KVRAG_CHECK(other.cols == cols_, kInternal, "append_rows: ", other.cols,
              " columns onto a tensor of ", cols_);
  const int64_t old_rows = rows_;
  resize_rows(rows_ + other.rows);
  for (int64_t i = 0; i < other.rows; ++i) {
    std::memcpy(row(old_rows + i), other.row(i), sizeof(float) * cols_);
  }
}

std::string shape_string(const std::vector<int64_t>& shape) {
  std::string out = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i > 0) out += ", ";
    out += std::to_string(shape[i]);
  }
  return out + "]";
}

}  // namespace kvrag
