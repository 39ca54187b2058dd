#include "core/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <set>

#include "core/error.h"
#include "core/half.h"
#include "core/json_input.h"

namespace kvrag {

// The file's bytes are reinterpreted in place, and safetensors data is
// little-endian.
static_assert(std::endian::native == std::endian::little,
              "kvrag's safetensors reader assumes a little-endian host");

namespace {

using nlohmann::json;

constexpr const char* kIndexFile = "model.safetensors.index.json";
constexpr const char* kSingleFile = "model.safetensors";

bool parse_dtype(const std::string& name, DType* dtype) {
  static const std::pair<const char*, DType> kNames[] = {
      {"F32", DType::kF32}, {"F16", DType::kF16}, {"BF16", DType::kBF16},
      {"I64", DType::kI64}, {"I32", DType::kI32}, {"F64", DType::kF64},
      {"I8", DType::kI8},   {"U8", DType::kU8},   {"BOOL", DType::kBool},
  };
  for (const auto& [text, value] : kNames) {
    if (name == text) {
      *dtype = value;
      return true;
    }
  }
  return false;
}

uint64_t dtype_size(DType dtype) {
  switch (dtype) {
    case DType::kF64:
    case DType::kI64:
      return 8;
    case DType::kF32:
    case DType::kI32:
      return 4;
    case DType::kF16:
    case DType::kBF16:
      return 2;
    case DType::kI8:
    case DType::kU8:
    case DType::kBool:
      return 1;
  }
  return 1;
}

std::string offsets_string(uint64_t begin, uint64_t end) {
  return str_cat("[", begin, ", ", end, "]");
}

// Reads the header of the mapped file into `tensors` and `metadata`; every
// problem is Error(kFormat) naming `path`.
void parse_header(const std::string& path, const uint8_t* map, size_t size,
                  std::map<std::string, TensorInfo>* tensors,
                  std::map<std::string, std::string>* metadata, const uint8_t** data) {
  KVRAG_CHECK(size >= 8, kFormat, path, ": safetensors header is truncated (file has ", size,
              " bytes, needs 8)");
  uint64_t header_len = 0;
  std::memcpy(&header_len, map, sizeof(header_len));
  KVRAG_CHECK(header_len <= size - 8, kFormat, path, ": header length ", header_len,
              " runs past the end of the file (", size, " bytes)");
  const char* header_begin = reinterpret_cast<const char*>(map + 8);
  const uint64_t data_size = size - 8 - header_len;
  *data = map + 8 + header_len;

  json header;
  try {
    header = parse_json_bounded(std::string_view(header_begin, header_len));
  } catch (const Error& e) {
    KVRAG_THROW(kFormat, path, ": header: ", e.what());
  }
  KVRAG_CHECK(header.is_object(), kFormat, path, ": header is not a JSON object (it is a JSON ",
              header.type_name(), ")");

  for (const auto& [name, entry] : header.items()) {
    if (name == "__metadata__") {
      KVRAG_CHECK(entry.is_object(), kFormat, path, ": \"__metadata__\" is not a JSON object");
      for (const auto& [key, value] : entry.items()) {
        KVRAG_CHECK(value.is_string(), kFormat, path, ": \"__metadata__\" key '", key,
                    "' is not a string (it is a JSON ", value.type_name(), ")");
        (*metadata)[key] = value.get<std::string>();
      }
      continue;
    }
    KVRAG_CHECK(entry.is_object(), kFormat, path, ": tensor '", name,
                "' entry is not a JSON object");

    TensorInfo info;
    const auto dtype_it = entry.find("dtype");
    KVRAG_CHECK(dtype_it != entry.end(), kFormat, path, ": tensor '", name, "' has no \"dtype\"");
    KVRAG_CHECK(dtype_it->is_string(), kFormat, path, ": tensor '", name,
                "' \"dtype\" is not a string");
    const std::string dtype_text = dtype_it->get<std::string>();
    KVRAG_CHECK(parse_dtype(dtype_text, &info.dtype), kFormat, path, ": tensor '", name,
                "' has unsupported dtype '", dtype_text, "'");

    const auto shape_it = entry.find("shape");
    KVRAG_CHECK(shape_it != entry.end(), kFormat, path, ": tensor '", name, "' has no \"shape\"");
    KVRAG_CHECK(shape_it->is_array(), kFormat, path, ": tensor '", name,
                "' \"shape\" is not an array of integers");
    for (const json& dim : *shape_it) {
      KVRAG_CHECK(dim.is_number_integer(), kFormat, path, ": tensor '", name,
                  "' \"shape\" is not an array of integers");
      info.shape.push_back(dim.get<int64_t>());
    }
    for (const int64_t dim : info.shape) {
      KVRAG_CHECK(dim >= 0, kFormat, path, ": tensor '", name,
                  "' has a negative dimension in shape ", shape_string(info.shape));
    }

    const auto offsets_it = entry.find("data_offsets");
    KVRAG_CHECK(offsets_it != entry.end(), kFormat, path, ": tensor '", name,
                "' has no \"data_offsets\"");
    const bool offsets_ok = offsets_it->is_array() && offsets_it->size() == 2 &&
                            (*offsets_it)[0].is_number_unsigned() &&
                            (*offsets_it)[1].is_number_unsigned();
    KVRAG_CHECK(offsets_ok, kFormat, path, ": tensor '", name,
                "' \"data_offsets\" is not [begin, end] with non-negative "
                "integers");
    info.begin = (*offsets_it)[0].get<uint64_t>();
    info.end = (*offsets_it)[1].get<uint64_t>();
    KVRAG_CHECK(info.begin <= info.end, kFormat, path, ": tensor '", name, "' data offsets ",
                offsets_string(info.begin, info.end), " end before they begin");
    KVRAG_CHECK(info.end <= data_size, kFormat, path, ": tensor '", name, "' data offsets ",
                offsets_string(info.begin, info.end), " are out of range (data area is ", data_size,
                " bytes)");

    // numel * dtype_size must equal the byte count; a product that overflows
    // cannot, since the byte count fits in the file.
    uint64_t bytes = dtype_size(info.dtype);
    bool overflow = false;
    for (const int64_t dim : info.shape) {
      overflow = overflow || __builtin_mul_overflow(bytes, static_cast<uint64_t>(dim), &bytes);
    }
    for (const int64_t dim : info.shape) {
      if (dim == 0) {  // [huge, huge, 0] holds no values
        bytes = 0;
        overflow = false;
      }
    }
    if (overflow || bytes != info.end - info.begin) {
      const std::string count = overflow ? std::string("too many values")
                                         : str_cat(bytes / dtype_size(info.dtype), " values");
      KVRAG_THROW(kFormat, path, ": tensor '", name, "' has shape ", shape_string(info.shape), " (",
                  count, ") but its data offsets cover ", info.end - info.begin, " bytes");
    }
    (*tensors)[name] = std::move(info);
  }
}

}  // namespace

const char* dtype_name(DType dtype) {
  switch (dtype) {
    case DType::kF32:
      return "F32";
    case DType::kF16:
      return "F16";
    case DType::kBF16:
      return "BF16";
    case DType::kI64:
      return "I64";
    case DType::kI32:
      return "I32";
    case DType::kF64:
      return "F64";
    case DType::kI8:
      return "I8";
    case DType::kU8:
      return "U8";
    case DType::kBool:
      return "BOOL";
  }
  return "?";
}

int64_t TensorInfo::numel() const {
  int64_t n = 1;
  for (const int64_t dim : shape) n *= dim;
  return n;
}

SafeTensorsFile::SafeTensorsFile(const std::string& path) : path_(path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    const int err = errno;
    KVRAG_CHECK(err != ENOENT, kNotFound, path, ": no such file");
    KVRAG_THROW(kIo, path, ": cannot open: ", std::strerror(err));
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const int err = errno;
    ::close(fd);
    KVRAG_THROW(kIo, path, ": cannot stat: ", std::strerror(err));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    KVRAG_THROW(kIo, path, ": not a regular file");
  }
  const size_t size = static_cast<size_t>(st.st_size);
  if (size < 8) {
    // mmap of an empty file fails, and such a file cannot hold a header.
    ::close(fd);
    KVRAG_THROW(kFormat, path, ": safetensors header is truncated (file has ", size,
                " bytes, needs 8)");
  }
  void* map = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
  const int map_errno = errno;
  ::close(fd);  // the mapping keeps the file alive
  KVRAG_CHECK(map != MAP_FAILED, kIo, path, ": cannot mmap: ", std::strerror(map_errno));
  map_ = static_cast<const uint8_t*>(map);
  map_size_ = size;

  // The destructor does not run when the constructor throws.
  try {
    parse_header(path_, map_, map_size_, &tensors_, &metadata_, &data_);
  } catch (...) {
    ::munmap(const_cast<uint8_t*>(map_), map_size_);
    throw;
  }
}

SafeTensorsFile::~SafeTensorsFile() {
  if (map_ != nullptr) ::munmap(const_cast<uint8_t*>(map_), map_size_);
}

std::vector<std::string> SafeTensorsFile::names() const {
  std::vector<std::string> names;
  names.reserve(tensors_.size());
  for (const auto& entry : tensors_) names.push_back(entry.first);
  return names;
}

const TensorInfo& SafeTensorsFile::info(const std::string& name) const {
  const auto it = tensors_.find(name);
  KVRAG_CHECK(it != tensors_.end(), kNotFound, "tensor '", name, "' not found in ", path_);
  return it->second;
}

std::vector<float> SafeTensorsFile::read_f32(const std::string& name) const {
  const TensorInfo& t = info(name);
  const uint8_t* src = data_ + t.begin;
  const size_t n = static_cast<size_t>(t.numel());
  std::vector<float> out(n);
  // memcpy throughout: the data area need not be aligned.
  switch (t.dtype) {
    case DType::kF32:
      if (n > 0) std::memcpy(out.data(), src, n * sizeof(float));
      return out;
    case DType::kF16:
    case DType::kBF16:
      for (size_t i = 0; i < n; ++i) {
        uint16_t bits = 0;
        std::memcpy(&bits, src + 2 * i, sizeof(bits));
        out[i] = t.dtype == DType::kF16 ? half_to_float(bits) : bf16_to_float(bits);
      }
      return out;
    default:
      KVRAG_THROW(kFormat, path_, ": tensor '", name, "' has dtype '", dtype_name(t.dtype),
                  "', expected a float tensor (F32, F16 or BF16)");
  }
}

std::vector<int64_t> SafeTensorsFile::read_i64(const std::string& name) const {
  const TensorInfo& t = info(name);
  const uint8_t* src = data_ + t.begin;
  const size_t n = static_cast<size_t>(t.numel());
  std::vector<int64_t> out(n);
  switch (t.dtype) {
    case DType::kI64:
      if (n > 0) std::memcpy(out.data(), src, n * sizeof(int64_t));
      return out;
    case DType::kI32:
      for (size_t i = 0; i < n; ++i) {
        int32_t value = 0;
        std::memcpy(&value, src + 4 * i, sizeof(value));
        out[i] = value;
      }
      return out;
    default:
      KVRAG_THROW(kFormat, path_, ": tensor '", name, "' has dtype '", dtype_name(t.dtype),
                  "', expected an integer tensor (I64 or I32)");
  }
}

SafeTensorsCheckpoint::SafeTensorsCheckpoint(const std::string& dir) : dir_(dir) {
  namespace fs = std::filesystem;
  const fs::path index_path = fs::path(dir) / kIndexFile;
  const fs::path single_path = fs::path(dir) / kSingleFile;

  // The error_code overloads, so a path that cannot be stat'ed reads as
  // missing (a kvrag::Error) instead of escaping as std::filesystem_error.
  std::error_code ec;
  if (fs::exists(index_path, ec)) {
    const std::string index = index_path.string();
    std::ifstream in(index_path, std::ios::binary);
    KVRAG_CHECK(in.good(), kIo, index, ": cannot open: ", std::strerror(errno));
    const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    KVRAG_CHECK(!in.bad(), kIo, index, ": cannot read: ", std::strerror(errno));
    json root;
    try {
      root = parse_json_bounded(text);
    } catch (const Error& e) {
      KVRAG_THROW(kFormat, index, ": ", e.what());
    }
    KVRAG_CHECK(root.is_object(), kFormat, index, ": not a JSON object");
    const auto map_it = root.find("weight_map");
    KVRAG_CHECK(map_it != root.end() && map_it->is_object(), kFormat, index,
                ": has no \"weight_map\" object");
    KVRAG_CHECK(!map_it->empty(), kFormat, index, ": \"weight_map\" is empty");

    std::map<std::string, std::string> shard_of;  // tensor name -> shard file
    std::set<std::string> shards;
    for (const auto& [name, shard] : map_it->items()) {
      KVRAG_CHECK(shard.is_string(), kFormat, index, ": \"weight_map\" entry '", name,
                  "' is not a string");
      const std::string file = shard.get<std::string>();
      // Shards live next to the index; a path here would escape the folder.
      KVRAG_CHECK(
          !file.empty() && file.find('/') == std::string::npos && file != "." && file != "..",
          kFormat, index, ": \"weight_map\" entry '", name, "' names '", file,
          "', which is not a file name in ", dir);
      shard_of[name] = file;
      shards.insert(file);
    }

    std::map<std::string, size_t> shard_index;
    for (const std::string& file : shards) {
      const fs::path shard_path = fs::path(dir) / file;
      KVRAG_CHECK(fs::exists(shard_path, ec), kNotFound, shard_path.string(),
                  ": no such file (a shard listed in ", index, ")");
      shard_index[file] = files_.size();
      files_.push_back(std::make_unique<SafeTensorsFile>(shard_path.string()));
    }
    for (const auto& [name, file] : shard_of) {
      const size_t i = shard_index.at(file);
      KVRAG_CHECK(files_[i]->has(name), kFormat, index, ": tensor '", name,
                  "' is listed in \"weight_map\" for ", files_[i]->path(),
                  " but that file does not have it");
      file_index_[name] = i;
    }
    return;
  }

  if (fs::exists(single_path, ec)) {
    files_.push_back(std::make_unique<SafeTensorsFile>(single_path.string()));
    for (const std::string& name : files_[0]->names()) file_index_[name] = 0;
    return;
  }
  KVRAG_THROW(kNotFound, dir, ": no ", kSingleFile, " or ", kIndexFile);
}

bool SafeTensorsCheckpoint::has(const std::string& name) const {
  return file_index_.count(name) > 0;
}

const SafeTensorsFile& SafeTensorsCheckpoint::file_of(const std::string& name) const {
  const auto it = file_index_.find(name);
  if (it == file_index_.end()) {
    // A name one or two bytes away from the wanted one, each differing byte
    // of another kind (a letter's case, a digit for a letter, a byte no
    // name holds), is a header damaged on disk, not a checkpoint of another
    // shape: say so, rather than let "not found" suggest a wrong model.
    // Same-kind differences ("block.2" for "block.3", "decoder" for
    // "encoder") are real names and leave the error as "not found".
    const auto kind_of = [](char c) {
      if (c >= 'a' && c <= 'z') return 0;
      if (c >= 'A' && c <= 'Z') return 1;
      if (c >= '0' && c <= '9') return 2;
      return c == '.' || c == '_' ? 3 : 4;
    };
    for (const auto& [other, file] : file_index_) {
      if (other.size() != name.size()) continue;
      int differ = 0;
      bool same_kind = false;
      for (size_t i = 0; i < name.size() && differ <= 2; ++i) {
        if (other[i] == name[i]) continue;
        ++differ;
        same_kind = same_kind || kind_of(other[i]) == kind_of(name[i]);
      }
      KVRAG_CHECK(differ > 2 || same_kind, kFormat, files_[file]->path(),
                  ": the safetensors header looks corrupt: it names a tensor '", other, "' where '",
                  name, "' is expected (", differ, differ == 1 ? " byte differs" : " bytes differ",
                  ")");
    }
    KVRAG_THROW(kNotFound, "tensor '", name, "' not found in ", dir_);
  }
  return *files_[it->second];
}

const TensorInfo& SafeTensorsCheckpoint::info(const std::string& name) const {
  return file_of(name).info(name);
}

Tensor SafeTensorsCheckpoint::load(const std::string& name,
                                   const std::vector<int64_t>& expected_shape) const {
  KVRAG_CHECK(expected_shape.size() == 1 || expected_shape.size() == 2, kInvalidArgument,
              "load of tensor '", name, "': expected shape must be 1-D or 2-D, got ",
              shape_string(expected_shape));
  const SafeTensorsFile& file = file_of(name);
  const TensorInfo& t = file.info(name);
  KVRAG_CHECK(t.shape == expected_shape, kFormat, "tensor '", name,
              "' has wrong shape in model file ", file.path(), ": got ", shape_string(t.shape),
              ", expected ", shape_string(expected_shape));
  std::vector<float> values = file.read_f32(name);
  // Checked once here, where every weight is read: a NaN or Inf weight would
  // otherwise give NaN attention and empty answers with no error at all.
  for (size_t i = 0; i < values.size(); ++i) {
    if (std::isfinite(values[i])) continue;
    const auto bad =
        std::count_if(values.begin(), values.end(), [](float v) { return !std::isfinite(v); });
    KVRAG_THROW(kFormat, "tensor '", name, "' in model file ", file.path(), " holds ", values[i],
                " at index ", i, " (", bad, " of its ", values.size(),
                " values are NaN or Inf): the checkpoint is damaged");
  }
  if (expected_shape.size() == 1) {
    return Tensor(1, expected_shape[0], std::move(values));
  }
  return Tensor(expected_shape[0], expected_shape[1], std::move(values));
}

std::vector<std::string> SafeTensorsCheckpoint::files() const {
  std::vector<std::string> paths;
  paths.reserve(files_.size());
  for (const auto& file : files_) paths.push_back(file->path());
  return paths;
}

}  // namespace kvrag
