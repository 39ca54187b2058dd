// A row-major float32 matrix that owns its data (Tensor) and non-owning views
// of one (View, ConstView). Layout is always x[i * ld + j]; a view may have
// ld > cols, which is how an attention head is taken as a column slice of an
// [T, inner_dim] projection.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace kvrag {

struct ConstView {
  const float* data = nullptr;
  int64_t rows = 0;
  int64_t cols = 0;
  int64_t ld = 0;  // elements between the starts of two rows, >= cols

  const float* row(int64_t i) const { return data + i * ld; }
  // Columns [begin, begin + count) of every row.
  ConstView cols_slice(int64_t begin, int64_t count) const {
    return {data + begin, rows, count, ld};
  }
  ConstView rows_slice(int64_t begin, int64_t count) const {
    return {data + begin * ld, count, cols, ld};
  }
};

struct View {
  float* data = nullptr;
  int64_t rows = 0;
  int64_t cols = 0;
  int64_t ld = 0;

  float* row(int64_t i) const { return data + i * ld; }
  View cols_slice(int64_t begin, int64_t count) const { return {data + begin, rows, count, ld}; }
  View rows_slice(int64_t begin, int64_t count) const {
    return {data + begin * ld, count, cols, ld};
  }
  operator ConstView() const { return {data, rows, cols, ld}; }
};

class Tensor {
 public:
  Tensor() = default;
  // A zero-filled [rows, cols] matrix.
  Tensor(int64_t rows, int64_t cols)
      : data_(static_cast<size_t>(rows * cols), 0.0f), rows_(rows), cols_(cols) {}
  Tensor(int64_t rows, int64_t cols, std::vector<float> data);

  int64_t rows() const { return rows_; }
  int64_t cols() const { return cols_; }
  int64_t size() const { return rows_ * cols_; }
  int64_t bytes() const { return size() * int64_t{sizeof(float)}; }
  bool empty() const { return data_.empty(); }
  float* data() { return data_.data(); }
  const float* data() const { return data_.data(); }
  float* row(int64_t i) { return data_.data() + i * cols_; }
  const float* row(int64_t i) const { return data_.data() + i * cols_; }
  float& at(int64_t i, int64_t j) { return data_[static_cast<size_t>(i * cols_ + j)]; }
  float at(int64_t i, int64_t j) const { return data_[static_cast<size_t>(i * cols_ + j)]; }

  View view() { return {data_.data(), rows_, cols_, cols_}; }
  ConstView view() const { return {data_.data(), rows_, cols_, cols_}; }
  ConstView cview() const { return view(); }

  // Changes the number of rows, keeping the first min(old, new) rows.
  void resize_rows(int64_t rows);
  // Appends the rows of `other`, which must have the same number of columns.
  void append_rows(ConstView other);

 private:
  std::vector<float> data_;
  int64_t rows_ = 0;
  int64_t cols_ = 0;
};

// "[a, b]": how shapes appear in error messages.
std::string shape_string(const std::vector<int64_t>& shape);

}  // namespace kvrag
