#include "core/safetensors_writer.h"

#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

#include "core/error.h"
#include "core/half.h"

namespace kvrag {
namespace {

static_assert(std::endian::native == std::endian::little,
              "safetensors data is little-endian and is written from memory as it is");

uint64_t element_bytes(DType dtype) { return dtype == DType::kF32 ? 4 : 2; }

void check_tensor(const NamedTensorView& t, std::set<std::string>* seen) {
  KVRAG_CHECK(seen->insert(t.name).second, kInvalidArgument, "write_safetensors: tensor '", t.name,
              "' given twice");
  int64_t numel = 1;
  for (const int64_t dim : t.shape) {
    KVRAG_CHECK(dim >= 0, kInvalidArgument, "write_safetensors: tensor '", t.name,
                "' has a negative dimension");
    numel *= dim;
  }
  KVRAG_CHECK(static_cast<int64_t>(t.values.size()) == numel, kInvalidArgument,
              "write_safetensors: tensor '", t.name, "' has ", t.values.size(),
              " values for a shape of ", numel);
}

// The JSON header, padded with spaces to a multiple of 8 bytes.
std::string make_header(const std::vector<NamedTensorView>& tensors, DType dtype) {
  nlohmann::json header = nlohmann::json::object();
  header["__metadata__"] = {{"format", "pt"}};
  uint64_t offset = 0;
  for (const NamedTensorView& t : tensors) {
    const uint64_t end = offset + t.values.size() * element_bytes(dtype);
    header[t.name] = {
        {"dtype", dtype_name(dtype)}, {"shape", t.shape}, {"data_offsets", {offset, end}}};
    offset = end;
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');
  return text;
}

void write_values(std::ofstream& out, std::span<const float> values, DType dtype) {
  if (dtype == DType::kF32) {
    out.write(reinterpret_cast<const char*>(values.data()),
              static_cast<std::streamsize>(values.size_bytes()));
    return;
  }
  // Converted in blocks: a T5-base embedding is 25M values.
  constexpr size_t kBlock = 1 << 16;
  std::vector<uint16_t> bits;
  for (size_t begin = 0; begin < values.size(); begin += kBlock) {
    const size_t end = std::min(values.size(), begin + kBlock);
    bits.clear();
    for (size_t i = begin; i < end; ++i) {
      bits.push_back(dtype == DType::kF16 ? float_to_half(values[i]) : float_to_bf16(values[i]));
    }
    out.write(reinterpret_cast<const char*>(bits.data()),
              static_cast<std::streamsize>(bits.size() * sizeof(uint16_t)));
  }
}

}  // namespace

void write_safetensors(const std::string& path, const std::vector<NamedTensorView>& tensors,
                       DType dtype) {
  KVRAG_CHECK(dtype == DType::kF32 || dtype == DType::kF16 || dtype == DType::kBF16,
              kInvalidArgument, "write_safetensors writes F32, F16 or BF16, not ",
              dtype_name(dtype));
  std::set<std::string> seen;
  for (const NamedTensorView& t : tensors) check_tensor(t, &seen);
  const std::string header = make_header(tensors, dtype);
  const uint64_t length = header.size();
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  KVRAG_CHECK(out.good(), kIo, "cannot create ", path);
  out.write(reinterpret_cast<const char*>(&length), sizeof(length));
  out.write(header.data(), static_cast<std::streamsize>(header.size()));
  for (const NamedTensorView& t : tensors) write_values(out, t.values, dtype);
  out.flush();
  KVRAG_CHECK(out.good(), kIo, "cannot write ", path);
}

void write_safetensors(const std::string& path, const std::vector<NamedTensor>& tensors,
                       DType dtype) {
  std::vector<NamedTensorView> views;
  views.reserve(tensors.size());
  for (const NamedTensor& t : tensors) views.push_back({t.name, t.shape, t.values});
  write_safetensors(path, views, dtype);
}

}  // namespace kvrag
