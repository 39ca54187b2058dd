// Reader of Hugging Face safetensors files: one file (mmap'ed) or a sharded
// checkpoint (model.safetensors.index.json naming the file of each tensor).
// Tensors stored as F32, F16 or BF16 are returned as float32; I64 as int64.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace kvrag {

enum class DType { kF32, kF16, kBF16, kI64, kI32, kF64, kI8, kU8, kBool };

const char* dtype_name(DType dtype);

struct TensorInfo {
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;
  uint64_t begin = 0;  // byte offsets relative to the start of the data area
  uint64_t end = 0;

  int64_t numel() const;
};

// One .safetensors file, memory-mapped for its lifetime.
// Throws Error(kNotFound) when the file is missing, Error(kFormat) naming the
// file and the problem when the header is truncated, its length points past
// the end, its JSON is bad, a dtype is not one of DType, or a tensor's data
// offsets are out of range or disagree with its shape.
class SafeTensorsFile {
 public:
  explicit SafeTensorsFile(const std::string& path);
  ~SafeTensorsFile();
  SafeTensorsFile(const SafeTensorsFile&) = delete;
  SafeTensorsFile& operator=(const SafeTensorsFile&) = delete;

  const std::string& path() const { return path_; }
  bool has(const std::string& name) const { return tensors_.count(name) > 0; }
  // Names in the order of the header's keys, sorted.
  std::vector<std::string> names() const;
  // Throws Error(kNotFound) naming the tensor and the file.
  const TensorInfo& info(const std::string& name) const;
  // The metadata map under "__metadata__" (empty when absent).
  const std::map<std::string, std::string>& metadata() const { return metadata_; }

  // The tensor's values converted to float32 (F32, F16, BF16 only; any other
  // dtype is Error(kFormat)). Row-major, numel() values.
  std::vector<float> read_f32(const std::string& name) const;
  // The tensor's values as int64 (I64 or I32 only).
  std::vector<int64_t> read_i64(const std::string& name) const;

 private:
  std::string path_;
  const uint8_t* map_ = nullptr;  // the whole file
  size_t map_size_ = 0;
  const uint8_t* data_ = nullptr;  // first byte after the header
  std::map<std::string, TensorInfo> tensors_;
  std::map<std::string, std::string> metadata_;
};

// A checkpoint folder: model.safetensors, or shards listed by
// model.safetensors.index.json ("weight_map": name -> shard file).
class SafeTensorsCheckpoint {
 public:
  // `dir` is a folder holding model.safetensors or the sharded index.
  // Throws Error(kNotFound) naming both candidate files when neither exists.
  explicit SafeTensorsCheckpoint(const std::string& dir);

  bool has(const std::string& name) const;
  const TensorInfo& info(const std::string& name) const;
  // Loads a float tensor and checks its shape; a tensor of another rank or
  // size is Error(kFormat): "tensor 'X' has wrong shape in model file
  // <path>: got [a, b], expected [c, d]". A missing tensor is
  // Error(kNotFound) naming the tensor and the checkpoint folder, or
  // Error(kFormat) "the safetensors header looks corrupt" when the
  // checkpoint names a tensor one or two bytes away from it. A NaN or Inf
  // value is Error(kFormat) naming the tensor, the file and the index.
  // 1-D shapes come back as a [1, n] Tensor.
  Tensor load(const std::string& name, const std::vector<int64_t>& expected_shape) const;
  // Every file of the checkpoint, for fingerprinting.
  std::vector<std::string> files() const;

 private:
  const SafeTensorsFile& file_of(const std::string& name) const;

  std::string dir_;
  std::vector<std::unique_ptr<SafeTensorsFile>> files_;
  std::map<std::string, size_t> file_index_;  // tensor name -> files_ index
};

}  // namespace kvrag
