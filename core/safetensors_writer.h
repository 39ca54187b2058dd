// Writer of Hugging Face safetensors files: float tensors stored as F32, F16
// or BF16, readable by SafeTensorsFile (core/safetensors.h) and by
// transformers. Used to write model folders (random-weight models for the
// benchmark) and test checkpoints.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "core/safetensors.h"

namespace kvrag {

// A tensor that owns its float32 values, whatever dtype it is written in.
struct NamedTensor {
  std::string name;
  std::vector<int64_t> shape;
  std::vector<float> values;  // row-major, product(shape) values
};

// A tensor to write whose values the caller keeps alive during the call.
struct NamedTensorView {
  std::string name;
  std::vector<int64_t> shape;
  std::span<const float> values;  // row-major, product(shape) values
};

// Writes `tensors` to `path` with every tensor stored as `dtype` (kF32, kF16
// or kBF16; F16 and BF16 round to nearest even), in the given order. The
// header is padded to a multiple of 8 and carries {"format": "pt"} as
// metadata. Values are converted and written tensor by tensor, so no copy of
// the whole file is held in memory.
// Throws Error(kInvalidArgument) for another dtype, a repeated name or a
// tensor whose value count is not the product of its shape, Error(kIo) when
// the file cannot be written.
void write_safetensors(const std::string& path, const std::vector<NamedTensorView>& tensors,
                       DType dtype = DType::kF32);
void write_safetensors(const std::string& path, const std::vector<NamedTensor>& tensors,
                       DType dtype = DType::kF32);

}  // namespace kvrag
